using System.Text.Json;
using System.Text.Json.Nodes;

namespace Conclave.Cli.Tests;

/// <summary>
/// `conclave bench` run briefly: the JSON it writes is complete (machine, baseline, every requested row with sane
/// percentiles and sizes, the comparison), the Markdown it writes is the same as `bench render` draws from the JSON,
/// the cluster rows carry DKG time and wire bytes, and bad arguments are one line with exit 2. No timing is asserted.
/// </summary>
[Collection("Console")]
public sealed class BenchCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("conclave-bench-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static IEnumerable<JsonNode> Rows(JsonNode report) => report["rows"]!.AsArray().Select(r => r!);

    private static JsonNode Row(JsonNode report, string id)
        => Rows(report).SingleOrDefault(r => r["id"]!.GetValue<string>() == id) ?? throw new Xunit.Sdk.XunitException($"row {id} is missing");

    private static void AssertSaneLatency(JsonNode row)
    {
        JsonNode sign = row["sign"]!;
        string id = row["id"]!.GetValue<string>();
        Assert.True(sign["samples"]!.GetValue<int>() >= 5, $"{id}: fewer than 5 samples");
        double p50 = sign["p50Us"]!.GetValue<double>(), p95 = sign["p95Us"]!.GetValue<double>(), p99 = sign["p99Us"]!.GetValue<double>();
        Assert.True(p50 > 0 && p50 <= p95 && p95 <= p99, $"{id}: percentiles out of order ({p50}, {p95}, {p99})");
        Assert.True(row["sequentialPerSecond"]!.GetValue<double>() > 0, $"{id}: no throughput");
        Assert.True(row["ratioToBaseline"]!.GetValue<double>() > 0, $"{id}: no ratio to the baseline");
        Assert.False(string.IsNullOrWhiteSpace(row["securityProfile"]!.GetValue<string>()), $"{id}: no security profile");
    }

    [Fact]
    public async Task InProcess_WritesCompleteJson_AndTheSameTablesAsRender()
    {
        string json = Path.Combine(_dir, "bench.json");
        string md = Path.Combine(_dir, "PERFORMANCE.md");
        await File.WriteAllTextAsync(md, "# Performance\n\nhand-written text that must survive\n");
        CliRunner.Result r = await CliRunner.RunAsync(null, "bench", "--duration", "0.05", "--shapes", "2-of-3,3-of-5",
            "--schemes", "ed25519,frost-secp256k1,safe-multisig,ml-dsa-65,policy", "--json", json, "--markdown", md);
        Assert.True(r.ExitCode == 0, r.Stderr);

        JsonNode report = JsonNode.Parse(await File.ReadAllTextAsync(json))!;
        JsonNode machine = report["machine"]!;
        Assert.True(machine["logicalCores"]!.GetValue<int>() >= 1);
        Assert.False(string.IsNullOrWhiteSpace(machine["cpu"]!.GetValue<string>()));
        Assert.NotEmpty(machine["nativeLibraries"]!.AsArray());
        Assert.Equal("ecdsa-secp256k1/libsecp256k1", report["baselineId"]!.GetValue<string>());
        Assert.True(report["baselineP50Us"]!.GetValue<double>() > 0);

        // Exactly the requested rows (the baseline always runs), each with sane figures.
        string[] expected =
        [
            "ecdsa-secp256k1/libsecp256k1", "ed25519", "frost-secp256k1/2-of-3", "frost-secp256k1/3-of-5",
            "safe-multisig/2-of-3", "safe-multisig/3-of-5", "ml-dsa-65",
            .. new[] { "per-agent", "by-venue", "by-contract", "by-condition", "by-range", "by-threshold", "nested-bands", "deny-caps", "deny-lists", "allowlists", "by-chain", "by-time", "by-second-condition", "by-shared-range", "by-two-ranges", "by-not-in-list", "by-minute" }.SelectMany(l => new[] { 10, 100, 1000, 10000 }.Select(n => $"policy/decide-{l}-{n}")),
        ];
        Assert.Equal(expected.Order(StringComparer.Ordinal), Rows(report).Select(x => x["id"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        foreach (JsonNode row in Rows(report))
        {
            AssertSaneLatency(row);
            if (row["family"]!.GetValue<string>() == "policy")
            {
                Assert.Equal("decide", row["operation"]!.GetValue<string>());
                continue; // a decision has no key generation or verification
            }

            Assert.Equal("sign", row["operation"]!.GetValue<string>());
            Assert.True(row["verifyUs"]!.GetValue<double>() > 0);
            Assert.True(row["keyGenerationMs"]!.GetValue<double>() > 0);
        }

        Assert.Contains("1 candidate(s)", Row(report, "policy/decide-per-agent-10")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("40 candidate(s)", Row(report, "policy/decide-per-agent-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the contract index leaves 1 candidate(s)", Row(report, "policy/decide-by-contract-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the argument index leaves 1 candidate(s)", Row(report, "policy/decide-by-condition-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the range index leaves 1 candidate(s)", Row(report, "policy/decide-by-range-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the floor index leaves 1 candidate(s)", Row(report, "policy/decide-by-threshold-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the interval tree leaves 1 candidate(s)", Row(report, "policy/decide-nested-bands-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the fail-closed range index leaves 1 candidate(s)", Row(report, "policy/decide-deny-caps-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the fail-closed value index leaves 1 candidate(s)", Row(report, "policy/decide-deny-lists-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the chain index leaves 1 candidate(s)", Row(report, "policy/decide-by-chain-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the hour index leaves 1 candidate(s)", Row(report, "policy/decide-by-time-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the nested index leaves 1 candidate(s)", Row(report, "policy/decide-by-second-condition-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the condition filter (every range, not-in-list and ne condition) leaves 1 candidate(s)", Row(report, "policy/decide-by-shared-range-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the condition filter (every range, not-in-list and ne condition) leaves 1 candidate(s)", Row(report, "policy/decide-by-two-ranges-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the condition filter (every range, not-in-list and ne condition) leaves 1 candidate(s)", Row(report, "policy/decide-by-not-in-list-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("the minute index leaves 1 candidate(s)", Row(report, "policy/decide-by-minute-10000")["note"]!.GetValue<string>(), StringComparison.Ordinal);

        Assert.Equal(1.0, Row(report, "ecdsa-secp256k1/libsecp256k1")["ratioToBaseline"]!.GetValue<double>(), 6);
        Assert.Equal(64, Row(report, "ed25519")["signatureBytes"]!.GetValue<int>());
        Assert.Equal(65, Row(report, "frost-secp256k1/2-of-3")["signatureBytes"]!.GetValue<int>());
        Assert.Equal(2 * 65, Row(report, "safe-multisig/2-of-3")["signatureBytes"]!.GetValue<int>());
        Assert.Equal(3 * 65, Row(report, "safe-multisig/3-of-5")["signatureBytes"]!.GetValue<int>());
        Assert.Equal(3309, Row(report, "ml-dsa-65")["signatureBytes"]!.GetValue<int>());

        string[] approaches = [.. report["comparison"]!.AsArray().Select(c => c!["approach"]!.GetValue<string>())];
        Assert.Contains("single key (baseline)", approaches);
        Assert.Contains("MPC arithmetic only (frost-secp256k1)", approaches);
        Assert.Contains("multisig (Safe)", approaches);
        JsonNode mpc = report["comparison"]!.AsArray().First(c => c!["approach"]!.GetValue<string>().StartsWith("MPC", StringComparison.Ordinal))!;
        Assert.Contains("2-of-3 1.0×, 3-of-5", mpc["scalability"]!.GetValue<string>(), StringComparison.Ordinal);

        // The Markdown: hand-written text kept, one generated section, and the same section bench render draws from the JSON.
        string written = await File.ReadAllTextAsync(md);
        Assert.StartsWith("# Performance\n\nhand-written text that must survive\n", written, StringComparison.Ordinal);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(written, "conclave bench: begin"));
        Assert.Contains("| `safe-multisig/3-of-5` | in-process |", written, StringComparison.Ordinal);
        Assert.Contains("### Policy decisions", written, StringComparison.Ordinal);
        Assert.Contains("| `policy/decide-by-condition-1000` | decide |", written, StringComparison.Ordinal);
        string md2 = Path.Combine(_dir, "again.md");
        await File.WriteAllTextAsync(md2, "# Performance\n\nhand-written text that must survive\n");
        CliRunner.Result render = await CliRunner.RunAsync(null, "bench", "render", json, "--markdown", md2);
        Assert.True(render.ExitCode == 0, render.Stderr);
        Assert.Equal(written, await File.ReadAllTextAsync(md2));

        // Rendering again replaces the section instead of adding a second one.
        Assert.Equal(0, (await CliRunner.RunAsync(null, "bench", "render", json, "--markdown", md2)).ExitCode);
        Assert.Equal(written, await File.ReadAllTextAsync(md2));
    }

    /// <summary>The key-count rows (opt-in, --schemes keys): one row per count, each with its lookup, memory, disk and start-up figures.</summary>
    [Fact]
    public async Task KeyCounts_OneRowPerCount_WithLookupMemoryDiskAndStartUpFigures()
    {
        string json = Path.Combine(_dir, "keys.json");
        CliRunner.Result r = await CliRunner.RunAsync(null, "bench", "--duration", "0.05", "--schemes", "keys", "--key-counts", "3,40", "--json", json);
        Assert.True(r.ExitCode == 0, r.Stderr);
        JsonNode report = JsonNode.Parse(await File.ReadAllTextAsync(json))!;
        Assert.Equal(["ecdsa-secp256k1/libsecp256k1", "keys/frost-secp256k1-3", "keys/frost-secp256k1-40"],
            Rows(report).Select(x => x["id"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        foreach (string id in new[] { "keys/frost-secp256k1-3", "keys/frost-secp256k1-40" })
        {
            JsonNode row = Row(report, id);
            AssertSaneLatency(row);
            Assert.Equal("keys", row["family"]!.GetValue<string>());
            string note = row["note"]!.GetValue<string>();
            foreach (string part in new[] { "find by name p50", "registry lookup p50", "B per key on disk", "start-up (open the store, no key registered)", "first use of a key p50", "every key row with its holders" })
            {
                Assert.Contains(part, note, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Cluster_RowsCarryDkgTimeAndWireBytes_AndHsmRowsRunOnARealToken()
    {
        string json = Path.Combine(_dir, "cluster.json");
        List<string> args = ["bench", "--duration", "0.05", "--concurrency", "4", "--cluster", "--shapes", "2-of-3",
            "--schemes", "frost-secp256k1,ecdsa-dkls23,ed25519,ecdsa-secp256k1,transport,rotation,hsm-ecdsa-secp256k1,hsm-ed25519", "--json", json];
        string? module = Environment.GetEnvironmentVariable("CONCLAVE_TEST_HSM_MODULE");
        Assert.False(string.IsNullOrEmpty(module), "CONCLAVE_TEST_HSM_MODULE is not set: run through ./test.sh or eval \"$(bash scripts/test-services/softhsm.sh)\"");
        args.AddRange(["--hsm-module", module!, "--hsm-token", Environment.GetEnvironmentVariable("CONCLAVE_TEST_HSM_TOKEN")!,
            "--hsm-pin-file", Environment.GetEnvironmentVariable("CONCLAVE_TEST_HSM_PIN_FILE")!]);
        CliRunner.Result r = await CliRunner.RunAsync(null, [.. args]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        JsonNode report = JsonNode.Parse(await File.ReadAllTextAsync(json))!;

        JsonNode frost = Row(report, "frost-secp256k1/cluster-2-of-3");
        AssertSaneLatency(frost);
        Assert.Equal("cluster-rest", frost["where"]!.GetValue<string>());
        Assert.True(frost["keyGenerationMs"]!.GetValue<double>() > 0, "no DKG time");
        Assert.True(frost["nodeBytesPerSignature"]!.GetValue<double>() > 0, "no coordinator-node bytes");
        Assert.True(frost["restBytesPerSignature"]!.GetValue<double>() > 0, "no REST bytes");
        Assert.True(frost["cpuUsPerSignature"]!.GetValue<double>() > 0, "no CPU per signature (server and node processes)");
        Assert.Contains("shares per node sign step", frost["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(frost["concurrentPerSecond"]!.GetValue<double>() > 0);
        Assert.Equal(4, frost["concurrency"]!.GetValue<int>());

        // Threshold ECDSA through the cluster: DKG plus pairwise setup timed, 64-byte signatures checked before the row is kept.
        JsonNode dkls = Row(report, "ecdsa-dkls23/cluster-2-of-3");
        AssertSaneLatency(dkls);
        Assert.Equal("mpc", dkls["family"]!.GetValue<string>());
        Assert.True(dkls["keyGenerationMs"]!.GetValue<double>() > 0, "no DKG time");
        Assert.True(dkls["nodeBytesPerSignature"]!.GetValue<double>() > 0, "no coordinator-node bytes");
        // What one signer sends (its round messages to its peer and its share): at most half of what crosses the coordinator's sockets.
        double party = dkls["partyBytesPerSignature"]!.GetValue<double>();
        Assert.True(party > 0 && party <= dkls["nodeBytesPerSignature"]!.GetValue<double>() / 2, $"a signer's bytes: {party}");
        Assert.Equal(64, dkls["signatureBytes"]!.GetValue<int>());

        // Online DKLs23 signing from the presignature pool through the same REST route: every timed signature used a
        // presignature (the row is not written otherwise), presign time and wire bytes reported.
        JsonNode presigned = Row(report, "ecdsa-dkls23/cluster-presigned-2-of-3");
        AssertSaneLatency(presigned);
        Assert.Equal("mpc", presigned["family"]!.GetValue<string>());
        Assert.Equal("sign-presigned", presigned["operation"]!.GetValue<string>());
        Assert.Equal("cluster-rest", presigned["where"]!.GetValue<string>());
        Assert.True(presigned["presignMs"]!.GetValue<double>() > 0, "no presign time");
        Assert.True(presigned["concurrentPerSecond"]!.GetValue<double>() > 0);
        Assert.True(presigned["nodeBytesPerSignature"]!.GetValue<double>() > 0, "no coordinator-node bytes");
        Assert.True(presigned["partyBytesPerSignature"]!.GetValue<double>() > 0, "no bytes from a presigned signer");
        Assert.True(presigned["nodeBytesPerSignature"]!.GetValue<double>() < dkls["nodeBytesPerSignature"]!.GetValue<double>(), "one online round sends less than three rounds");
        Assert.True(presigned["cpuUsPerSignature"]!.GetValue<double>() > 0, "no CPU per presigned signature (server and node processes)");
        Assert.Contains("presigned halves per node online step", presigned["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("(warm-up)", presigned["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("warm-up of three-round signatures", dkls["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(64, presigned["signatureBytes"]!.GetValue<int>());
        Assert.Null(dkls["presignMs"]);

        // sign/batch with 256 items per request, for a threshold and a server-held key: every item signed, the first verified.
        foreach (string id in new[] { "frost-secp256k1/cluster-batch-256-2-of-3", "ecdsa-secp256k1/cluster-batch-256-2-of-3" })
        {
            JsonNode batch = Row(report, id);
            AssertSaneLatency(batch);
            Assert.Equal("sign/batch 256", batch["operation"]!.GetValue<string>());
            Assert.True(batch["concurrentPerSecond"]!.GetValue<double>() > 0);
        }

        JsonNode single = Row(report, "ed25519/cluster-2-of-3");
        AssertSaneLatency(single);
        Assert.Null(single["nodeBytesPerSignature"]);
        AssertSaneLatency(Row(report, "transport/grpc-empty-call"));

        // One signed step over each transport, and FROST far apart: every coordinator-node link through a delaying proxy
        // (the row is written only if its last signature verified; its DKG is timed).
        foreach (string id in new[] { "transport/signed-step-frames", "transport/signed-step-grpc" })
        {
            AssertSaneLatency(Row(report, id));
        }

        foreach (string id in new[] { "transport/far-20ms-frost-secp256k1-2-of-3", "transport/far-80ms-frost-secp256k1-2-of-3" })
        {
            JsonNode far = Row(report, id);
            AssertSaneLatency(far);
            Assert.Equal("cluster-far", far["where"]!.GetValue<string>());
            Assert.True(far["keyGenerationMs"]!.GetValue<double>() > 0, "no DKG time");
            Assert.Contains("round trip", far["note"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // Rotation of the threshold key only (issue 13's figures): refresh, reshare, and signing while refreshes run.
        foreach ((string id, string operation) in new[]
        {
            ("rotation/frost-secp256k1/refresh-2-of-3", "refresh"), ("rotation/frost-secp256k1/reshare-2-of-3", "reshare"),
            ("rotation/frost-secp256k1/sign-during-refresh-2-of-3", "sign-during-refresh"),
        })
        {
            JsonNode row = Row(report, id);
            AssertSaneLatency(row);
            Assert.Equal("rotation", row["family"]!.GetValue<string>());
            Assert.Equal(operation, row["operation"]!.GetValue<string>());
        }

        Assert.DoesNotContain(Rows(report), r => r["id"]!.GetValue<string>().StartsWith("rotation/ed25519", StringComparison.Ordinal));

        // What policy adds through REST: the server's own timing of each authorization during every scheme's sequential
        // signatures, and a server-held key whose signatures reserve a velocity limit in the store.
        foreach (string id in new[] { "policy/rest-frost-secp256k1-2-of-3", "policy/rest-ed25519-server-held", "policy/rest-ecdsa-secp256k1-server-held", "policy/rest-velocity-ecdsa-secp256k1" })
        {
            JsonNode row = Row(report, id);
            AssertSaneLatency(row);
            Assert.Equal("policy", row["family"]!.GetValue<string>());
            Assert.Equal("authorize (REST)", row["operation"]!.GetValue<string>());
            Assert.Contains("the signatures' own p50 was", row["note"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // What a velocity limit adds, from paired signatures (a difference may be negative; its count is the pairs').
        JsonNode added = Row(report, "policy/rest-velocity-added-ecdsa-secp256k1");
        Assert.Equal("velocity limit (REST)", added["operation"]!.GetValue<string>());
        Assert.True(added["sign"]!["samples"]!.GetValue<int>() >= 5);
        Assert.Contains("pairs of sequential signatures", added["note"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("sign", frost["operation"]!.GetValue<string>());

        foreach (string hsm in new[] { "hsm-ecdsa-secp256k1", "hsm-ed25519" })
        {
            JsonNode row = Row(report, hsm);
            AssertSaneLatency(row);
            Assert.Equal("hsm", row["family"]!.GetValue<string>());
        }

        Assert.Contains(report["comparison"]!.AsArray(), c => c!["approach"]!.GetValue<string>() == "MPC through the cluster (frost-secp256k1)");
        Assert.Contains(report["comparison"]!.AsArray(), c => c!["approach"]!.GetValue<string>() == "MPC through the cluster (ecdsa-dkls23, presigned)");
        Assert.Contains(report["comparison"]!.AsArray(), c => c!["approach"]!.GetValue<string>() == "HSM");
        Assert.Empty(report["notMeasured"]!.AsArray());
    }

    [Theory]
    [InlineData("--duration", "0", "--duration must be between")]
    [InlineData("--duration", "NaN", "--duration must be between")]
    [InlineData("--concurrency", "0", "--concurrency must be between")]
    [InlineData("--shapes", "3-of-2", "t-of-n")]
    [InlineData("--shapes", "1-of-3", "t-of-n")]
    [InlineData("--cluster-shape", "x", "t-of-n")]
    [InlineData("--schemes", "rsa", "unknown row 'rsa'")]
    [InlineData("--key-counts", "0", "--key-counts: '0' is not a count")]
    [InlineData("--hsm-module", "/nonexistent.so", "need all three")]
    public async Task BadArguments_AreOneLineAndExit2(string option, string value, string expected)
    {
        CliRunner.Result r = await CliRunner.RunAsync(null, "bench", option, value);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(expected, r.Stderr, StringComparison.Ordinal);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Render_RefusesWhatIsNotABenchReport()
    {
        string bad = Path.Combine(_dir, "bad.json");
        await File.WriteAllTextAsync(bad, "{\"rows\":");
        CliRunner.Result r = await CliRunner.RunAsync(null, "bench", "render", bad);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("not a conclave bench JSON file", r.Stderr, StringComparison.Ordinal);
        CliRunner.Result missing = await CliRunner.RunAsync(null, "bench", "render", Path.Combine(_dir, "none.json"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("does not exist", missing.Stderr, StringComparison.Ordinal);
    }
}
