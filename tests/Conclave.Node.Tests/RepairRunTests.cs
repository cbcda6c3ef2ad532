using Conclave.Crypto.Randomness;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Rotation;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Google.Protobuf;

namespace Conclave.Node.Tests;

/// <summary>
/// Repair as a crash-safe rotation run through real signer nodes (docs/ROTATION.md). A node that lost its share of a
/// key (here: a trusted-dealer key imported on the other holders only, so no process restart is needed) gets it back
/// from t helpers; the coordinator is stopped dead at each step boundary of the repair, a new one with the same run log
/// resumes: before the decision the run is aborted and the lost node holds nothing, after it the run is committed and
/// the repaired share is current; the key's one-run lock holds meanwhile; the run's public transcript verifies against
/// the manifest and tampering is refused.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class RepairRunTests(FiveNodeCluster fixture) : IClassFixture<FiveNodeCluster>
{
    private static readonly string[] Boundaries = ["started", "deltas", "sigmas", "finish", "prepared", "nodes-committed", "committed", "nodes-retired"];
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    public static TheoryData<string> Cases() => [.. Boundaries];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task CoordinatorCrashDuringRepair_ThenResume_FinishesOrAbortsCleanly(string boundary)
    {
        var runs = new InMemoryRotationLog();
        var coordinator = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        FrostKeyInfo key = await ImportWithoutAsync(coordinator, $"repair-crash-{boundary}-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Secp256k1Sha256, lost: 3,
            TestSeed.For("dealer of the key repaired at " + boundary));
        Assert.Equal(("Absent", ""), await StatusAsync(3, key.KeyId));
        coordinator.FaultInjection = (_, b) => b == boundary ? throw new RotationCrashException(b) : Task.CompletedTask;
        await Assert.ThrowsAsync<RotationCrashException>(() => coordinator.RepairAsync(key.KeyId, 3, CancellationToken.None));

        // The process is gone; while its run is unfinished no other run of the key starts (repair or refresh).
        var next = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        next.Register(key);
        RotationRun run = Assert.Single(await runs.ListForKeyAsync(key.KeyId, 10));
        Assert.Equal((RotationKind.Repair, 1, 1), (run.Kind, run.FromVersion, run.ToVersion));
        if (!run.IsFinished)
        {
            Conclave.Storage.StorageException locked = await Assert.ThrowsAsync<Conclave.Storage.StorageException>(() => next.RepairAsync(key.KeyId, 3, CancellationToken.None));
            Assert.Contains("unfinished rotation run", locked.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<Conclave.Storage.StorageException>(() => next.RefreshAsync(key.KeyId, CancellationToken.None));
            await next.ResumeAsync(run.RunId, CancellationToken.None);
        }

        run = (await runs.GetAsync(run.RunId))!;
        bool rolledForward = boundary is "prepared" or "nodes-committed" or "committed" or "nodes-retired";
        Assert.Equal(rolledForward ? RotationState.Retired : RotationState.Aborted, run.State);
        Assert.Empty(await runs.ListUnfinishedAsync());
        if (!rolledForward)
        {
            // Aborted: the lost node discarded what it held pending (or never stored anything); a new repair succeeds.
            Assert.Equal(("Absent", ""), await StatusAsync(3, key.KeyId));
            await next.RepairAsync(key.KeyId, 3, CancellationToken.None);
        }

        Assert.Equal(("Active", ""), await StatusAsync(3, key.KeyId));
        await AssertRepairedShareWorksAsync(next, key, TestSeed.Bytes(32, "message after the repair at " + boundary));
    }

    [Fact]
    public async Task RepairRun_LeavesATranscriptThatVerifies_AndTamperingIsRefused()
    {
        var runs = new InMemoryRotationLog();
        var coordinator = new FrostCoordinator(_c.Coordinator) { Runs = runs, PoolBatch = 4 };
        FrostKeyInfo key = await ImportWithoutAsync(coordinator, "repair-transcript-" + Guid.NewGuid().ToString("N")[..8], FrostCiphersuite.Ed25519Sha512, lost: 2,
            TestSeed.For("dealer"), nodes: [1, 2, 3, 4], threshold: 3);
        FrostKeyInfo repaired = await coordinator.RepairAsync(key.KeyId, 2, CancellationToken.None);
        Assert.Equal((1, true), (repaired.Version, repaired.PublicKeyPackage.PublicEquals(key.PublicKeyPackage)));
        RotationRun run = Assert.Single(await runs.ListForKeyAsync(key.KeyId, 10));
        Assert.Null(await runs.GetTranscriptAsync(key.KeyId, 1)); // the version's transcript is the run's that made it, never a repair's
        RotationTranscript t = RotationTranscript.FromJson(await runs.GetRunTranscriptAsync(run.RunId) ?? throw new InvalidOperationException("no repair transcript"));
        ClusterManifest manifest = _c.Coordinator.Manifest;
        Assert.Equal(("repair", 1, 1, 2u), (t.Kind, t.FromVersion, t.ToVersion, Assert.Single(t.Receivers)));
        Assert.Equal((3, 1), (t.Broadcasts.Count, t.Confirmations.Count));
        Assert.Equal(new TranscriptCheck(true, "ok"), TranscriptVerifier.Verify(t, manifest));

        // `conclave rotation verify`, offline: ok (0) and refused (1).
        string dir = Directory.CreateTempSubdirectory("conclave-repair-transcript-").FullName;
        try
        {
            string good = Path.Combine(dir, "good.json"), bad = Path.Combine(dir, "bad.json");
            await File.WriteAllBytesAsync(good, t.ToJsonBytes());
            await File.WriteAllBytesAsync(bad, (t with { Broadcasts = t.Broadcasts.Skip(1).ToList() }).ToJsonBytes());
            (int exit, string stdout, string stderr) = Cli("rotation", "verify", good, "--manifest", _c.Layout.ManifestPath);
            Assert.True(exit == 0, stderr);
            Assert.StartsWith($"ok: repair of key {key.KeyId} at version 1", stdout, StringComparison.Ordinal);
            (exit, _, stderr) = Cli("rotation", "verify", bad, "--manifest", _c.Layout.ManifestPath);
            Assert.Equal((1, $"conclave: refused: no contribution from helper {t.Dealers[0]}"), (exit, stderr.Trim()));
        }
        finally
        {
            Directory.Delete(dir, true);
        }

        // A node that holds its share is not "repaired" again: the run is refused by the node and aborted.
        await Assert.ThrowsAsync<NodeCallException>(() => coordinator.RepairAsync(key.KeyId, 2, CancellationToken.None));

        string otherPackage = OtherKey(t, TestSeed.For("other key"));
        Assert.Equal("a repair must leave the public key package unchanged", Refused(t with { NewPublicKeyPackage = otherPackage }, manifest));
        Assert.Equal(
            $"helper 1's contribution names another key, version, repaired node, helper set or package",
            Refused(t with { OldPublicKeyPackage = otherPackage, NewPublicKeyPackage = otherPackage }, manifest));
        Assert.Equal("a repair keeps the key's version; this one goes from 1 to 2", Refused(t with { ToVersion = 2 }, manifest));
        Assert.Equal($"no contribution from helper {t.Dealers[0]}", Refused(t with { Broadcasts = t.Broadcasts.Skip(1).ToList() }, manifest));
        Assert.Equal($"two contributions from helper {t.Dealers[0]}", Refused(t with { Broadcasts = [t.Broadcasts[0], .. t.Broadcasts] }, manifest));
        Assert.Equal($"node {t.Dealers[0]}'s contribution is not signed by its identity key", Refused(t with { Broadcasts = [Altered(t.Broadcasts[0]), .. t.Broadcasts.Skip(1)] }, manifest));
        Assert.Equal($"node {t.Dealers[0]}'s contribution belongs to another run", Refused(t with { Broadcasts = [Rerun(t.Broadcasts[0], TestSeed.Bytes(32, "another run's session")), .. t.Broadcasts.Skip(1)] }, manifest));
        Assert.Equal("node 2's confirmation is not signed by its identity key", Refused(t with { Confirmations = [Altered(t.Confirmations[0])] }, manifest));
        Assert.Equal("a repair needs exactly one confirmation, from node 2", Refused(t with { Confirmations = [] }, manifest));
        Assert.Equal("helper 1's contribution names another key, version, repaired node, helper set or package",
            Refused(t with { Dealers = [1, 3], Broadcasts = t.Broadcasts.Where(b => Sender(b) != 4).ToList() }, manifest));
    }

    /// <summary>
    /// The repaired node's share is the right one: a refresh (in which it deals from its repaired share and checks its new
    /// share against every dealer's commitments) succeeds, and the key then signs <paramref name="msg"/> under its unchanged public key.
    /// </summary>
    private static async Task AssertRepairedShareWorksAsync(FrostCoordinator coordinator, FrostKeyInfo key, byte[] msg)
    {
        FrostKeyInfo refreshed = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        Assert.Equal(key.PublicKeyPackage.VerificationKey, refreshed.PublicKeyPackage.VerificationKey);
        byte[] sig = await coordinator.SignAsync(key.KeyId, msg, CancellationToken.None);
        Assert.True(key.Suite.Verify(key.PublicKeyPackage.VerificationKey, msg, sig));
    }

    private Task<FrostKeyInfo> ImportWithoutAsync(FrostCoordinator coordinator, string keyId, FrostCiphersuite suite, uint lost, IRandomSource dealer, uint[]? nodes = null, int threshold = 2) =>
        LostShareKeys.ImportWithoutAsync(_c, coordinator, keyId, suite, lost, nodes ?? [1, 2, 3], threshold, dealer);

    private async Task<(string State, string ActiveRun)> StatusAsync(uint node, string keyId)
    {
        (_, string state, string run, _) = await NodeKeyStatus.ReadAsync(_c.Coordinator, node, keyId);
        return (state, run);
    }

    private static string Refused(RotationTranscript t, ClusterManifest manifest)
    {
        TranscriptCheck check = TranscriptVerifier.Verify(t, manifest);
        Assert.False(check.Ok);
        return check.Reason;
    }

    private static (int Exit, string Out, string Err) Cli(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(RepoPaths.CliDll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = System.Diagnostics.Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "the CLI did not exit");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static uint Sender(string hex) => Envelope.Parser.ParseFrom(Convert.FromHexString(hex)).Sender;

    private static string OtherKey(RotationTranscript t, IRandomSource random)
    {
        Assert.True(FrostCiphersuite.TryGet(t.Scheme, out FrostCiphersuite? suite));
        using DealerOutput d = TrustedDealer.Generate(suite, t.Threshold, 4, random);
        return Convert.ToHexStringLower(d.PublicKeyPackage.ToBytes());
    }

    private static string Altered(string hex)
    {
        Envelope e = Envelope.Parser.ParseFrom(Convert.FromHexString(hex));
        byte[] payload = e.Payload.ToByteArray();
        payload[^1] ^= 1;
        e.Payload = ByteString.CopyFrom(payload);
        return Convert.ToHexStringLower(e.ToByteArray());
    }

    private static string Rerun(string hex, byte[] session)
    {
        Envelope e = Envelope.Parser.ParseFrom(Convert.FromHexString(hex));
        e.SessionId = ByteString.CopyFrom(session);
        return Convert.ToHexStringLower(e.ToByteArray());
    }
}
