using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Server.Threshold.Engine;
using Conclave.Storage.Rotation;

namespace Conclave.Node.Tests;

/// <summary>
/// Attacks on ecdsa-dkls23 key generation through real node processes (docs/DKLS23.md "Attacks through node processes"):
/// the FROST DKG on secp256k1 (commit before reveal, Feldman commitments, proofs of knowledge, echo, complaints) and then
/// the DKLs23 pairwise setup (ePrint 2023/765 section 3). Node 4 runs as the test node host with one DKG fault
/// (DkgFaultCatalogue, --dkg-fault) or one setup fault (DklsFaultCatalogue, --dkls-fault), every message validly signed
/// by it. Key creation 2-of-{1, 4, 5} must fail naming node 4, store no key on any node and register none; meanwhile a
/// key of nodes 1 and 5 is created and signs (node 4 excluded); healed, the same key id is created on {1, 4, 5} and
/// nodes 1 and 4 sign with it (a DKG or setup failure bans nobody).
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class DklsKeyGenerationAttackTests(FaultyFourCluster fixture) : IClassFixture<FaultyFourCluster>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    /// <summary>Host option, fault, the culprit reason the coordinator established (null: the peer's refusal) and a part of the message.</summary>
    public static TheoryData<string, string, string?, string> Faults => new()
    {
        // Round two of the DKG: exact commitment length and the proof of knowledge (Komlo–Goldberg Figure 1, round 2 step 1).
        { "--dkg-fault", "commitment-length", null, "wrong commitment length or an invalid proof of knowledge" },
        { "--dkg-fault", "proof", null, "wrong commitment length or an invalid proof of knowledge" },

        // Finish: a share that fails vss_verify, or a chain-code contribution unlike the committed one, sent to node 1
        // only: node 1 complains with node 4's signed message, which convicts node 4.
        { "--dkg-fault", "feldman", CulpritReason.InvalidDkgShare, "does not match its commitments" },
        { "--dkg-fault", "chain-code", CulpritReason.InvalidDkgShare, "does not match its commitments" },

        // Different commitments, or round-one packages, to different peers: the coordinator holds both signed copies.
        { "--dkg-fault", "two-commitments", CulpritReason.DkgEquivocation, "different commitments" },
        { "--dkg-fault", "two-packages", CulpritReason.DkgEquivocation, "different round-one packages" },

        // The pairwise setup: another public key package digest, a zero-share seed opening unlike its commitment.
        { "--dkls-fault", "setup-key-digest", null, "PublicKeyMismatch" },
        { "--dkls-fault", "setup-seed-opening", null, "SeedCommitmentMismatch" },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task AFaultyDealerOrSetupPeer_FailsKeyGenerationNamingIt_NoKeyIsStored_AndARetrySucceeds(string option, string fault, string? reason, string message)
    {
        var frost = new FrostCoordinator(_c.Coordinator);
        var runs = new InMemoryRotationLog();
        var coordinator = new DklsCoordinator(frost.Engine) { Runs = runs };
        string keyId = "dkls-keygen-" + fault + "-" + Guid.NewGuid().ToString("N")[..8];
        await fixture.Faults.WithAsync(option, fault, async () =>
        {
            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => coordinator.CreateKeyAsync(keyId, 2, [1, 4, 5], CancellationToken.None));
            Assert.Equal([4u], e.Culprits);
            if (reason is not null)
            {
                Assert.Equal([new CulpritReason(4, reason)], e.Reasons);
            }

            Assert.Contains(message, e.Message, StringComparison.Ordinal);

            // No key: the run aborted, nothing registered, and no node holds anything of the key or an unfinished run.
            Assert.Null(coordinator.Find(keyId));
            Assert.Contains(await runs.ListForKeyAsync(keyId, 10), r => r.State == RotationState.Aborted);
            foreach (uint n in new uint[] { 1, 4, 5 })
            {
                Assert.Equal((0, "Absent", ""), await StatusAsync(n, keyId));
            }

            // Node 4 excluded: nodes 1 and 5 make a key and sign with it.
            DklsKeyInfo without = await coordinator.CreateKeyAsync(keyId + "-without-4", 2, [1, 5], CancellationToken.None);
            await SignAndVerifyAsync(coordinator, without, fault + ": without node 4");
        });

        // Healed: the same key id on the same nodes, and nodes 1 and 4 sign (nobody was banned).
        DklsKeyInfo key = await coordinator.CreateKeyAsync(keyId, 2, [1, 4, 5], CancellationToken.None);
        frost.Health.MarkUntrusted(5);
        try
        {
            await SignAndVerifyAsync(coordinator, key, fault + ": healed, nodes 1 and 4");
        }
        finally
        {
            frost.Health.Readmit(5);
        }
    }

    /// <summary>
    /// A base-OT sender point S + G in the pairwise setup (fault "setup-base-ot"): Endemic OT (ePrint 2019/706) has no proof
    /// that a party's messages are well formed, so no party can tell at setup and the key is created; the damage is node
    /// 1's chosen seeds in the direction where node 4 extends, so the first signing of nodes 1 and 4 fails node 1's
    /// SoftSpokenOT consistency check (ePrint 2022/192 section 4) on node 4's message: node 4 named and banned by node 1,
    /// which then refuses a session with it (typed, nobody named) until a refresh makes a fresh pairwise setup. Nodes 1
    /// and 5 are unaffected and sign throughout.
    /// </summary>
    [Fact]
    public async Task ATamperedBaseOtInTheSetup_ShowsAtTheFirstSigningOfThePair_WhichBansTheSender_UntilARefresh()
    {
        var frost = new FrostCoordinator(_c.Coordinator);
        var coordinator = new DklsCoordinator(frost.Engine);
        DklsKeyInfo key = null!;
        await fixture.Faults.WithAsync("--dkls-fault", "setup-base-ot", async () =>
        {
            key = await coordinator.CreateKeyAsync("dkls-keygen-base-ot-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 4, 5], CancellationToken.None);
        });

        await WithoutAsync(frost, 5, async () =>
        {
            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => SignAndVerifyAsync(coordinator, key, "base-ot: nodes 1 and 4"));
            Assert.Equal([4u], e.Culprits);
            Assert.Contains("OtExtensionConsistency", e.Message, StringComparison.Ordinal);

            byte[] start = new PayloadWriter().String(key.KeyId).U32((uint)key.Version).U32(2).U32(1).U32(4).U32(0).ToArray();
            NodeCallException banned = await Assert.ThrowsAsync<NodeCallException>(() => _c.Coordinator.Node(1).StepAsync(
                _c.Coordinator.Request(Cluster.NewSessionId(), Conclave.Node.Threshold.Dkls23.DklsMessages.SignRound1, 1, [1], start), [], Timeout, CancellationToken.None));
            Assert.Null(banned.Culprit);
            Assert.Contains("banned", banned.Message, StringComparison.Ordinal);
        });

        await WithoutAsync(frost, 4, () => SignAndVerifyAsync(coordinator, key, "base-ot: nodes 1 and 5"));
        DklsKeyInfo refreshed = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        await WithoutAsync(frost, 5, () => SignAndVerifyAsync(coordinator, refreshed, "base-ot: after the refresh, nodes 1 and 4"));
    }

    private static async Task WithoutAsync(FrostCoordinator frost, uint node, Func<Task> body)
    {
        frost.Health.MarkUntrusted(node);
        try
        {
            await body();
        }
        finally
        {
            frost.Health.Readmit(node);
        }
    }

    private static async Task SignAndVerifyAsync(DklsCoordinator coordinator, DklsKeyInfo key, string label)
    {
        byte[] digest = SHA256.HashData(TestSeed.Bytes(16, label));
        DklsSignatureResult sig = await coordinator.SignDigestAsync(key.KeyId, digest, [], CancellationToken.None);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, sig.Signature), label);
    }

    private async Task<(int Version, string State, string Run)> StatusAsync(uint node, string keyId)
    {
        (int version, string state, string run, _) = await NodeKeyStatus.ReadAsync(_c.Coordinator, node, keyId);
        return (version, state, run);
    }
}
