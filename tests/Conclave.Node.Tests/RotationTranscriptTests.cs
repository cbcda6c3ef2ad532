using System.Diagnostics;
using Conclave.Node.Config;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Google.Protobuf;

namespace Conclave.Node.Tests;

/// <summary>
/// Public rotation transcripts from real node processes (docs/ROTATION.md "Verifying a rotation"): every key
/// generation, refresh and reshare keeps one; it verifies offline against the cluster manifest; each kind of tampering
/// is refused with its reason; `conclave rotation verify` exits 0, 1 (refused) or 2 (unreadable input).
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class RotationTranscriptTests(FiveNodeCluster fixture) : IClassFixture<FiveNodeCluster>
{
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    [Fact]
    public async Task EveryRunLeavesATranscriptThatVerifies_AndTamperingIsRefused()
    {
        var runs = new InMemoryRotationLog();
        var coordinator = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        FrostKeyInfo key = await coordinator.CreateKeyAsync("transcript-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Ed25519Sha512, 2, [1, 2, 3], CancellationToken.None);
        await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        await coordinator.ReshareAsync(key.KeyId, 3, [2, 3, 4, 5], CancellationToken.None);
        ClusterManifest manifest = _c.Coordinator.Manifest;

        RotationTranscript gen = await TranscriptAsync(runs, key.KeyId, 1);
        RotationTranscript refresh = await TranscriptAsync(runs, key.KeyId, 2);
        RotationTranscript reshare = await TranscriptAsync(runs, key.KeyId, 3);
        Assert.Equal(("key-generation", "refresh", "reshare"), (gen.Kind, refresh.Kind, reshare.Kind));
        Assert.Equal((3, 3, 2, 4), (refresh.Broadcasts.Count, refresh.Confirmations.Count, reshare.Broadcasts.Count, reshare.Confirmations.Count));
        foreach (RotationTranscript t in new[] { gen, refresh, reshare })
        {
            Assert.Equal(new TranscriptCheck(true, "ok"), TranscriptVerifier.Verify(t, manifest));
        }

        // Tampering, each refused with its reason.
        Assert.Contains("verifying share of participant",
            Refused(refresh with { NewPublicKeyPackage = refresh.OldPublicKeyPackage! }, manifest), StringComparison.Ordinal);
        Assert.Equal("the group key changed", Refused(refresh with { NewPublicKeyPackage = OtherKey(refresh, TestSeed.For("other key")) }, manifest));
        Assert.StartsWith("no broadcast from dealer", Refused(refresh with { Broadcasts = refresh.Broadcasts.Skip(1).ToList() }, manifest), StringComparison.Ordinal);
        Assert.Equal("node 3 did not confirm the new key", Refused(refresh with { Confirmations = refresh.Confirmations.Take(2).ToList() }, manifest));
        Assert.Equal("node 1's broadcast belongs to another run", Refused(refresh with { Broadcasts = [gen.Broadcasts[0], .. refresh.Broadcasts.Skip(1)] }, manifest));
        Assert.Equal("node 1's broadcast is not signed by its identity key", Refused(refresh with { Broadcasts = [Altered(refresh.Broadcasts[0]), .. refresh.Broadcasts.Skip(1)] }, manifest));
        Assert.Equal("node 2's confirmation belongs to another run", Refused(refresh with { Confirmations = [refresh.Confirmations[0], gen.Confirmations[1], refresh.Confirmations[2]] }, manifest));
        Assert.Equal("node 2's confirmation is not signed by its identity key", Refused(refresh with { Confirmations = [refresh.Confirmations[0], Rerun(gen.Confirmations[1], refresh.RunId), refresh.Confirmations[2]] }, manifest));
        Assert.Equal("version 3 does not follow version 1", Refused(refresh with { FromVersion = 1, ToVersion = 3 }, manifest));

        // A manifest whose pinned key for node 1 is another node's: node 1's messages no longer verify.
        var forged = new ClusterManifest
        {
            CoordinatorIdentityKey = manifest.CoordinatorIdentityKey,
            Nodes = [.. manifest.Nodes.Select(n => n.Id == 1 ? new ClusterNode { Id = 1, Address = n.Address, IdentityKey = manifest.Nodes.Single(m => m.Id == 2).IdentityKey, AgreementKey = n.AgreementKey, AgreementKeySignature = n.AgreementKeySignature } : n)],
        };
        Assert.Equal("node 1's broadcast is not signed by its identity key", Refused(refresh, forged));

        // The CLI, offline: ok (0), refused with its reason (1), unreadable input (2).
        string dir = Directory.CreateTempSubdirectory("conclave-transcript-").FullName;
        try
        {
            string good = Path.Combine(dir, "good.json"), bad = Path.Combine(dir, "bad.json"), junk = Path.Combine(dir, "junk.json");
            await File.WriteAllBytesAsync(good, refresh.ToJsonBytes());
            await File.WriteAllBytesAsync(bad, (refresh with { Confirmations = refresh.Confirmations.Take(2).ToList() }).ToJsonBytes());
            await File.WriteAllTextAsync(junk, "{\"format\":1,");
            (int exit, string stdout, string stderr) = Cli("rotation", "verify", good, "--manifest", _c.Layout.ManifestPath);
            Assert.True(exit == 0, stderr);
            Assert.StartsWith("ok: refresh of key " + key.KeyId + " to version 2", stdout, StringComparison.Ordinal);
            (exit, _, stderr) = Cli("rotation", "verify", bad, "--manifest", _c.Layout.ManifestPath);
            Assert.Equal((1, "conclave: refused: node 3 did not confirm the new key"), (exit, stderr.Trim()));
            (exit, _, stderr) = Cli("rotation", "verify", junk, "--manifest", _c.Layout.ManifestPath);
            Assert.Equal(2, exit);
            Assert.StartsWith("conclave: error: ", stderr, StringComparison.Ordinal);
            (exit, _, stderr) = Cli("rotation", "verify", Path.Combine(dir, "absent.json"), "--manifest", _c.Layout.ManifestPath);
            Assert.Equal(2, exit);
            Assert.Contains("transcript file not found", stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static async Task<RotationTranscript> TranscriptAsync(InMemoryRotationLog runs, string keyId, int version) =>
        RotationTranscript.FromJson(await runs.GetTranscriptAsync(keyId, version) ?? throw new InvalidOperationException($"no transcript for version {version}"));

    internal static string Refused(RotationTranscript t, ClusterManifest manifest)
    {
        TranscriptCheck check = TranscriptVerifier.Verify(t, manifest);
        Assert.False(check.Ok);
        return check.Reason;
    }

    /// <summary>The public key package of another key (same scheme, 2-of-3 on the same participants), dealt from <paramref name="random"/>.</summary>
    private static string OtherKey(RotationTranscript t, DeterministicRandomSource random)
    {
        Assert.True(FrostCiphersuite.TryGet(t.Scheme, out FrostCiphersuite? suite));
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, random);
        return Convert.ToHexStringLower(d.PublicKeyPackage.ToBytes());
    }

    /// <summary>The envelope with one payload byte changed (its signature no longer covers it).</summary>
    internal static string Altered(string hex)
    {
        Envelope e = Envelope.Parser.ParseFrom(Convert.FromHexString(hex));
        byte[] payload = e.Payload.ToByteArray();
        payload[^1] ^= 1;
        e.Payload = ByteString.CopyFrom(payload);
        return Convert.ToHexStringLower(e.ToByteArray());
    }

    /// <summary>An envelope with another run's id put in (its signature no longer covers it).</summary>
    private static string Rerun(string hex, string runId)
    {
        Envelope e = Envelope.Parser.ParseFrom(Convert.FromHexString(hex));
        e.SessionId = ByteString.CopyFrom(Convert.FromHexString(runId));
        return Convert.ToHexStringLower(e.ToByteArray());
    }

    internal static (int Exit, string Out, string Err) Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "the CLI did not exit");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
