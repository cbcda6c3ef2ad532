using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Dkls23;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Server.Threshold.Engine;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Node.Tests;

/// <summary>
/// The DKLs23 attack catalogue through the real transport (docs/DKLS23.md "Every check, and what a party does when it
/// fails"): node 4 runs as the test node host with one signing fault (tests/Conclave.Node.FaultyNode, DklsFaultCatalogue),
/// so every tampered message is validly signed and sealed by node 4 and reaches its honest peer as node 4's own. A key
/// 2-of-{1, 4, 5}: with node 5 set aside the coordinator must sign with nodes 1 and 4, and node 1 refuses the session
/// naming node 4 (the culprit of the 502 problem and the sign.culprit audit entry); with node 4 set aside nodes 1 and 5
/// sign while node 4 is still faulty; healed, nodes 1 and 4 sign again, so node 1 banned nobody.
/// </summary>
[Collection(FiveNodeCluster.Sequential)]
public sealed class DklsClusterAttackTests(FaultyFourCluster fixture) : IClassFixture<FaultyFourCluster>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly LocalClusterProcesses _c = fixture.Cluster;

    /// <summary>Fault name, signatures node 4 takes part in before the fault shows, and the check that must fail.</summary>
    public static TheoryData<string, int, string> NamedFaults => new()
    {
        { "rvole-tau", 0, nameof(DklsFailure.RvoleCheck) },
        { "rvole-mu", 0, nameof(DklsFailure.RvoleCheck) },
        { "gamma-u", 0, nameof(DklsFailure.GammaUCheck) },
        { "gamma-v", 0, nameof(DklsFailure.GammaVCheck) },
        { "r-shifted", 0, nameof(DklsFailure.GammaUCheck) },
        { "pk-shifted", 0, nameof(DklsFailure.GammaVCheck) },
        { "opening", 0, nameof(DklsFailure.CommitmentMismatch) },
        { "commit-replay", 1, nameof(DklsFailure.CommitmentMismatch) },
        { "psi-above-n", 0, nameof(DklsFailure.MalformedMessage) },
        { "tau-n", 0, nameof(DklsFailure.MalformedMessage) },
        { "gamma-infinity", 0, nameof(DklsFailure.MalformedMessage) },
        { "gamma-off-curve", 0, nameof(DklsFailure.MalformedMessage) },
        { "round1-short", 0, nameof(DklsFailure.MalformedMessage) },
        { "round2-long", 0, nameof(DklsFailure.MalformedMessage) },
        { "vole-short", 0, nameof(DklsFailure.MalformedMessage) },
        { "header-from-zero", 0, nameof(DklsFailure.InvalidParticipant) },
        { "header-to-n", 0, nameof(DklsFailure.InvalidParticipant) },
        { "envelope-key", 0, NotValidlySigned },
        { "envelope-commit", 0, NotValidlySigned },
        { "envelope-message", 0, NotValidlySigned },
        { "envelope-echo", 0, NotValidlySigned },
        { "envelope-share", 0, NotValidlySigned },
    };

    /// <summary>What the coordinator says of a node whose reply (or relayed message) is not validly signed by it.</summary>
    private const string NotValidlySigned = "node 4 returned a message that is not validly signed by it for this session";

    /// <summary>
    /// Each fault of the catalogue: node 1 refuses with a typed refusal naming node 4 and the failed check (no exception
    /// crosses the RPC: the coordinator gets a NodeCallException with the culprit and turns it into a CulpritException),
    /// no signature is returned, node 1 stays up, an honest quorum signs meanwhile, and after healing node 4 signs with node 1.
    /// "commit-replay" sends, from its second session on, the pairwise commitment of its previous session: the first
    /// signature verifies, the second is refused.
    /// </summary>
    [Theory]
    [MemberData(nameof(NamedFaults))]
    public async Task ATamperedMessage_IsRefusedByTheHonestPeer_NamingNodeFour_AndHonestQuorumsSign(string fault, int before, string check)
    {
        (DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key) = await KeyAsync("dkls-attack-" + fault);
        await WithNodeFourFaultyAsync(coordinator, health, key, fault, async () =>
        {
            for (int i = 0; i < before; i++)
            {
                await SignAndVerifyAsync(coordinator, key, $"{fault} before {i}");
            }

            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => coordinator.SignDigestAsync(key.KeyId, SHA256.HashData(TestSeed.Bytes(16, fault)), [], CancellationToken.None));
            Assert.Equal([4u], e.Culprits);
            Assert.Contains(check, e.Message, StringComparison.Ordinal);
        });
    }

    /// <summary>
    /// Node 4 signs with a wrong but self-consistent additive share (sk_4 + 1 and pk_4 + G, committed to; fault
    /// "share-shifted"): every opening and Γ check passes and Σ pk_j ≠ PK does not, which one signer's view cannot
    /// attribute. Node 1 refuses (PublicKeySum) naming nobody, so no node is named and the call ends without a quorum,
    /// no signature; an honest quorum signs meanwhile; healed, nodes 1 and 4 sign (nobody was banned).
    /// </summary>
    [Fact]
    public async Task AWrongButSelfConsistentShare_FailsTheKeySum_NamingNobody_AndHonestQuorumsSign()
    {
        (DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key) = await KeyAsync("dkls-attack-sum");
        await WithNodeFourFaultyAsync(coordinator, health, key, "share-shifted", async () =>
        {
            QuorumUnavailableException e = await Assert.ThrowsAsync<QuorumUnavailableException>(() => SignAndVerifyAsync(coordinator, key, "key sum"));
            Assert.Contains("node 1: FailedPrecondition: DKLs23 " + nameof(DklsFailure.PublicKeySum), e.Message, StringComparison.Ordinal);
        });
    }

    /// <summary>
    /// Node 4 changes u_i in its final share (fault "share-u"), in three-round signing and from a pooled presignature: the
    /// coordinator's combine refuses it (the signature does not verify under the key; a tampered u_i or w_i is not
    /// attributable, so nobody is named) and no signature is returned; an honest quorum signs meanwhile, and healed, nodes
    /// 1 and 4 sign.
    /// </summary>
    [Fact]
    public async Task TamperedFinalShares_AreRefused_NoSignatureIsReleased_AndHonestQuorumsSign()
    {
        (DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key) = await KeyAsync("dkls-attack-share");
        var presigner = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { PresignPoolSize = 1, PresignParallelism = 1 };
        presigner.Register(key);
        await WithNodeFourFaultyAsync(coordinator, health, key, "share-u", async () =>
        {
            CulpritException three = await Assert.ThrowsAsync<CulpritException>(() => SignAndVerifyAsync(coordinator, key, "three rounds"));
            Assert.Empty(three.Culprits);
            Assert.Contains(nameof(DklsFailure.InvalidSignature), three.Message, StringComparison.Ordinal);

            await presigner.PresignAsync(key.KeyId, [], CancellationToken.None);
            DklsPooledPresignature pooled = presigner.TakePresignature(key, []) ?? throw new InvalidOperationException("nothing was presigned");
            Assert.Equal([1u, 4u], pooled.Signers);
            CulpritException online = await Assert.ThrowsAsync<CulpritException>(() => presigner.SignPresignedAsync(key, pooled, SHA256.HashData("presigned"u8), [], CancellationToken.None));
            Assert.Empty(online.Culprits);
            Assert.Contains(nameof(DklsFailure.InvalidSignature), online.Message, StringComparison.Ordinal);
        });
    }

    /// <summary>
    /// Node 4 sends OT-extension messages whose choice columns disagree (fault "ot-columns": one row's choice bit flipped in
    /// half of the κ columns, SoftSpokenOT ePrint 2022/192 section 4): node 1's consistency check fails, the coordinator's
    /// call ends naming node 4 (OtExtensionConsistency), and node 1 bans node 4. A session of nodes 1 and 4 that node 1
    /// was already running (started while node 4 was healthy, past round two) is cancelled: its round three is refused
    /// naming nobody and no share leaves node 1. A new session with node 4 is refused as banned (typed, nobody named);
    /// nodes 1 and 5 sign meanwhile. Healed, node 4 stays banned until a refresh (a fresh pairwise setup), after which
    /// nodes 1 and 4 sign.
    /// </summary>
    [Fact]
    public async Task InconsistentOtExtensionChoiceColumns_BanNodeFour_CancelItsRunningSessions_UntilARefresh()
    {
        (DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key) = await KeyAsync("dkls-attack-ot-columns");
        uint[] signers = [1, 4];
        byte[] start = new PayloadWriter().String(key.KeyId).U32((uint)key.Version).U32(2).U32(1).U32(4).U32(0).ToArray();
        byte[] running = Cluster.NewSessionId();
        List<Envelope> roundOne = await RoundOneAsync(running, signers, start);
        var roundTwo = new List<Envelope>();
        foreach (uint n in signers)
        {
            roundTwo.AddRange(await Step(n, running, DklsMessages.SignRound2, 2, [], roundOne.Where(m => m.Recipients.Contains(n) && m.Kind != DklsMessages.SignAgreementKey)));
        }

        await WithFaultAsync("ot-columns", async () =>
        {
            await WithoutAsync(health, 5, async () =>
            {
                CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => coordinator.SignDigestAsync(key.KeyId, SHA256.HashData(TestSeed.Bytes(16, "ot-columns")), [], CancellationToken.None));
                Assert.Equal([4u], e.Culprits);
                Assert.Contains(nameof(DklsFailure.OtExtensionConsistency), e.Message, StringComparison.Ordinal);
            });

            byte[] digest = new PayloadWriter().Bytes(SHA256.HashData(TestSeed.Bytes(16, "ot-columns: running"))).ToArray();
            NodeCallException cancelled = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, running, DklsMessages.SignRound3, 3, digest, roundTwo.Where(m => m.Recipients.Contains(1u))));
            Assert.Null(cancelled.Culprit);
            Assert.Contains("unknown session", cancelled.Message, StringComparison.Ordinal);

            NodeCallException banned = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, Cluster.NewSessionId(), DklsMessages.SignRound1, 1, start, []));
            Assert.Null(banned.Culprit);
            Assert.Contains(nameof(DklsFailure.PeerBanned), banned.Message, StringComparison.Ordinal);
            await WithoutAsync(health, 4, () => SignAndVerifyAsync(coordinator, key, "ot-columns: nodes 1 and 5"));
        });

        NodeCallException stillBanned = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, Cluster.NewSessionId(), DklsMessages.SignRound1, 1, start, []));
        Assert.Contains(nameof(DklsFailure.PeerBanned), stillBanned.Message, StringComparison.Ordinal);
        DklsKeyInfo refreshed = await coordinator.RefreshAsync(key.KeyId, CancellationToken.None);
        await WithoutAsync(health, 5, () => SignAndVerifyAsync(coordinator, refreshed, "ot-columns: refreshed, nodes 1 and 4"));
    }

    /// <summary>
    /// Presigning with node 4 returning envelopes of one kind with a flipped signature bit (docs/ARCHITECTURE.md "Reply
    /// signatures on the signing path"): a relayed round-one message is refused by node 1 naming nobody and the
    /// coordinator names node 4; a round-three answer (R and the pooled id) is refused by the coordinator on arrival. No
    /// presignature is pooled, and an honest quorum signs meanwhile; healed, nodes 1 and 4 sign.
    /// </summary>
    [Theory]
    [InlineData("envelope-message")]
    [InlineData("envelope-share")]
    public async Task PresigningWithABadlySignedMessage_NamesNodeFour_AndPoolsNothing(string fault)
    {
        (DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key) = await KeyAsync("dkls-attack-presign-" + fault);
        var presigner = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { PresignPoolSize = 1, PresignParallelism = 1 };
        presigner.Register(key);
        await WithNodeFourFaultyAsync(coordinator, health, key, fault, async () =>
        {
            NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => presigner.PresignAsync(key.KeyId, [], CancellationToken.None));
            Assert.Equal(4u, e.Culprit);
            Assert.Contains(NotValidlySigned, e.Message, StringComparison.Ordinal);
            Assert.Null(presigner.TakePresignature(key, []));
        });
    }

    /// <summary>
    /// Node 4 reuses a presignature (fault "presign-reuse": it keeps the secrets of the first pooled presignature it signs
    /// with and signs the next online round with them again). The first presigned signature verifies; in the second node
    /// 4's share is for the first session's R, so the signers report different R and the coordinator forms no signature,
    /// naming nobody (R is Σ R_j over openings only the signers saw); an honest quorum signs meanwhile, and healed, nodes
    /// 1 and 4 sign. (A path changed after presigning cannot come from a peer: each node takes the presignature from its
    /// own pool under the scope key version, signer set and path, tested as requests in DklsPresignClusterTests.)
    /// </summary>
    [Fact]
    public async Task AReusedPresignature_IsRefused_NoSignatureIsReleased_AndHonestQuorumsSign()
    {
        (DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key) = await KeyAsync("dkls-attack-reuse");
        var presigner = new DklsCoordinator(new ThresholdEngine(_c.Coordinator)) { PresignPoolSize = 1, PresignParallelism = 1 };
        presigner.Register(key);
        await WithNodeFourFaultyAsync(coordinator, health, key, "presign-reuse", async () =>
        {
            await presigner.PresignAsync(key.KeyId, [], CancellationToken.None);
            DklsPooledPresignature first = presigner.TakePresignature(key, []) ?? throw new InvalidOperationException("nothing was presigned");
            byte[] digest = SHA256.HashData(TestSeed.Bytes(16, "presign-reuse: first"));
            DklsSignatureResult ok = await presigner.SignPresignedAsync(key, first, digest, [], CancellationToken.None);
            Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, ok.Signature));

            await presigner.PresignAsync(key.KeyId, [], CancellationToken.None);
            DklsPooledPresignature second = presigner.TakePresignature(key, []) ?? throw new InvalidOperationException("nothing was presigned");
            Assert.Equal([1u, 4u], second.Signers);
            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => presigner.SignPresignedAsync(key, second, SHA256.HashData(TestSeed.Bytes(16, "presign-reuse: second")), [], CancellationToken.None));
            Assert.Empty(e.Culprits);
            Assert.Contains("different nonce points R", e.Message, StringComparison.Ordinal);
        });
    }

    /// <summary>
    /// Node 4 runs as the test node host with <paramref name="fault"/>: <paramref name="whileFaulty"/> runs with node 5 set
    /// aside (so the quorum is nodes 1 and 4); then, with node 4 set aside, nodes 1 and 5 sign while node 4 is still
    /// faulty; healed, nodes 1 and 4 sign again (node 1 banned nobody).
    /// </summary>
    private async Task WithNodeFourFaultyAsync(DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key, string fault, Func<Task> whileFaulty)
    {
        await WithFaultAsync(fault, async () =>
        {
            await WithoutAsync(health, 5, whileFaulty);
            await WithoutAsync(health, 4, () => SignAndVerifyAsync(coordinator, key, $"{fault}: honest quorum"));
        });

        await WithoutAsync(health, 5, () => SignAndVerifyAsync(coordinator, key, $"{fault}: healed"));
    }

    /// <summary>Runs <paramref name="body"/> with node 4 (the class's faulty host) injecting <paramref name="fault"/>, then heals it.</summary>
    private Task WithFaultAsync(string fault, Func<Task> body) => fixture.Faults.WithAsync("--dkls-fault", fault, body);

    /// <summary>Runs <paramref name="body"/> with <paramref name="node"/> set aside (untrusted in the coordinator's node health).</summary>
    private static async Task WithoutAsync(NodeHealth health, uint node, Func<Task> body)
    {
        health.MarkUntrusted(node);
        try
        {
            await body();
        }
        finally
        {
            health.Readmit(node);
        }
    }

    /// <summary>
    /// Stray messages relayed beside the genuine ones through the real transport (the test drives the steps as the
    /// coordinator; docs/DKLS23.md "Stray relayed messages"): node 4's round-one and round-two messages, broadcast and
    /// echo of an earlier session, and a byte-identical copy of each of node 4's messages of the session, relayed to node
    /// 1 in rounds two and three beside node 4's genuine ones. Node 1's transport drops them and the session completes
    /// with a signature that verifies; nobody is banned (the coordinator then signs with nodes 1 and 4).
    /// </summary>
    [Fact]
    public async Task MessagesOfAnotherSessionOrRelayedTwice_BesideTheGenuineOnes_AreDropped_AndTheSessionSigns()
    {
        (DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key) = await KeyAsync("dkls-attack-replay");
        uint[] signers = [1, 4];
        byte[] start = StartPayload(key, signers);

        // An earlier session of nodes 1 and 4 run to round three, then given up: node 4's messages to node 1 in it.
        byte[] old = Cluster.NewSessionId();
        List<Envelope> oldRoundOne = await RoundOneAsync(old, signers, start);
        List<Envelope> oldRoundTwo = await RoundTwoAsync(old, signers, oldRoundOne);
        List<Envelope> stale = [.. oldRoundOne.Concat(oldRoundTwo).Where(m => m.Sender == 4 && m.Recipients.Contains(1u) && m.Kind != DklsMessages.SignAgreementKey)];
        Assert.Equal(4, stale.Count); // commit and round-one message; round-two message and echo
        await AbortAsync(old, signers);

        await SignStepByStepAsync(key, signers, start, "stale messages beside the genuine ones",
            (node, relayed) => node == 1 ? [.. stale, .. relayed] : relayed);
        await SignStepByStepAsync(key, signers, start, "each of node 4's messages relayed twice",
            (node, relayed) => node == 1 ? [.. relayed, .. relayed.Where(m => m.Sender == 4)] : relayed);
        await WithoutAsync(health, 5, () => SignAndVerifyAsync(coordinator, key, "replays beside: nobody banned"));
    }

    /// <summary>
    /// A stray message relayed instead of the genuine one: node 4's round-one message of an earlier session in place of
    /// this session's (round two), and node 4's round-one message of this session relayed again in place of its round-two
    /// message (round three, a replay of a message node 1 already took). Node 1 drops the stray one and refuses the step,
    /// which then lacks node 4's message, naming nobody; no share leaves node 1. Nobody is banned: after each, a session
    /// of nodes 1 and 4 completes with a signature that verifies, and the coordinator signs with them.
    /// </summary>
    [Fact]
    public async Task AStaleOrReplayedMessage_InsteadOfTheGenuineOne_IsRefusedNamingNobody_AndTheNextSessionSigns()
    {
        (DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key) = await KeyAsync("dkls-attack-replay-instead");
        uint[] signers = [1, 4];
        byte[] start = StartPayload(key, signers);

        byte[] old = Cluster.NewSessionId();
        Envelope stale = (await RoundOneAsync(old, signers, start)).Single(m => m.Kind == DklsMessages.SignMessage && m.Sender == 4);
        await AbortAsync(old, signers);

        byte[] session = Cluster.NewSessionId();
        List<Envelope> m1 = await RoundOneAsync(session, signers, start);
        NodeCallException instead = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, session, DklsMessages.SignRound2, 2, [],
            [stale, .. ToNode(1, m1).Where(m => m.Kind != DklsMessages.SignMessage)]));
        Assert.Null(instead.Culprit);
        Assert.Contains("no dkls.sign.message message of round 1 from node 4 was relayed (1 stray relayed message was dropped)", instead.Message, StringComparison.Ordinal);
        await AbortAsync(session, signers);
        await SignStepByStepAsync(key, signers, start, "after a message of another session instead of the genuine one");

        byte[] replayed = Cluster.NewSessionId();
        List<Envelope> r1 = await RoundOneAsync(replayed, signers, start);
        List<Envelope> r2 = await RoundTwoAsync(replayed, signers, r1);
        Envelope roundOneFromFour = r1.Single(m => m.Kind == DklsMessages.SignMessage && m.Sender == 4);
        byte[] digest = new PayloadWriter().Bytes(SHA256.HashData(TestSeed.Bytes(16, "replayed instead"))).ToArray();
        NodeCallException again = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, replayed, DklsMessages.SignRound3, 3, digest,
            [roundOneFromFour, .. ToNode(1, r2).Where(m => m.Kind != DklsMessages.SignMessage)]));
        Assert.Null(again.Culprit);
        Assert.Contains("no dkls.sign.message message of round 2 from node 4 was relayed (1 stray relayed message was dropped)", again.Message, StringComparison.Ordinal);
        await AbortAsync(replayed, signers);
        await SignStepByStepAsync(key, signers, start, "after a replayed message instead of the genuine one");

        await WithoutAsync(health, 5, () => SignAndVerifyAsync(coordinator, key, "replays instead: nobody banned"));
    }

    /// <summary>
    /// A second session under a session id a node used (docs/DKLS23.md "Stray relayed messages"): after a session of nodes
    /// 1 and 4 is given up after round one, round one again under the same id is refused by each of them, naming nobody,
    /// so a coordinator cannot get an honest node to sign a second, different round-one message for one session and relay
    /// the first attempt's in place of the second's (which would not open, and would name its honest sender). Across a
    /// restart node 4 forgets the ids it used: given round one again under the id of a session node 1 still runs, it signs
    /// a second message for that session, and node 1, relayed both, refuses naming nobody and opens neither (two signed
    /// messages are no proof against their sender). Nobody is banned: the next session signs.
    /// </summary>
    [Fact]
    public async Task ASessionIdIsNeverUsedTwice_AndTwoDifferentSignedMessagesFromOneSender_AreRefusedNamingNobody()
    {
        (DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key) = await KeyAsync("dkls-attack-two-messages");
        uint[] signers = [1, 4];
        byte[] start = StartPayload(key, signers);

        byte[] session = Cluster.NewSessionId();
        await RoundOneAsync(session, signers, start);
        await AbortAsync(session, signers);
        foreach (uint n in signers)
        {
            NodeCallException again = await Assert.ThrowsAsync<NodeCallException>(() => Step(n, session, DklsMessages.SignRound1, 1, start, []));
            Assert.Null(again.Culprit);
            Assert.Contains($"node {n} ran a session under this session id already", again.Message, StringComparison.Ordinal);
        }

        // Node 4 restarted in the middle of a session node 1 runs: round one under the same id, delivered node 1's key again.
        byte[] reused = Cluster.NewSessionId();
        List<Envelope> m1 = await RoundOneAsync(reused, signers, start);
        Envelope first = m1.Single(m => m.Kind == DklsMessages.SignMessage && m.Sender == 4);
        FaultyNodeHost.StartWithFaultFile(_c, 4, fixture.Faults);
        await Step(4, reused, DklsMessages.SignRound1, 1, start, []);
        Envelope second = Assert.Single(await Step(4, reused, DklsMessages.SignDeliver, 1, [],
            m1.Where(m => m.Sender == 1 && m.Kind == DklsMessages.SignAgreementKey)), m => m.Kind == DklsMessages.SignMessage);
        Assert.NotEqual(first.Payload, second.Payload);

        NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, reused, DklsMessages.SignRound2, 2, [], [second, .. ToNode(1, m1)]));
        Assert.Null(e.Culprit);
        Assert.Contains("two different dkls.sign.message messages of round 1 from node 4 were relayed", e.Message, StringComparison.Ordinal);
        await AbortAsync(reused, signers);
        await SignStepByStepAsync(key, signers, start, "after two different messages from one sender");
        await WithoutAsync(health, 5, () => SignAndVerifyAsync(coordinator, key, "two messages: nobody banned"));
    }

    /// <summary>
    /// A pairwise commitment replayed from another pair (fault "commit-pair-replay"), in a session of three signers (a key
    /// 3-of-{1, 4, 5}): node 4 sends node 1 the commitment to R_4 it made for node 5, and node 5 the one for node 1, each
    /// bound to its own pair. Node 1 refuses round three with CommitmentMismatch naming node 4 and returns no share; the
    /// coordinator's call ends with node 4 the culprit and no signature. Healed, the three sign (nobody banned).
    /// </summary>
    [Fact]
    public async Task ACommitmentReplayedFromAnotherPair_IsRefusedNamingNodeFour_AndNothingIsReleased()
    {
        var frost = new FrostCoordinator(_c.Coordinator);
        var coordinator = new DklsCoordinator(frost.Engine);
        DklsKeyInfo key = await coordinator.CreateKeyAsync("dkls-attack-pair-" + Guid.NewGuid().ToString("N")[..8], 3, [1, 4, 5], CancellationToken.None);
        uint[] signers = [1, 4, 5];
        byte[] start = StartPayload(key, signers);
        await WithFaultAsync("commit-pair-replay", async () =>
        {
            byte[] session = Cluster.NewSessionId();
            List<Envelope> m1 = await RoundOneAsync(session, signers, start);
            List<Envelope> m2 = await RoundTwoAsync(session, signers, m1);
            byte[] digest = new PayloadWriter().Bytes(SHA256.HashData(TestSeed.Bytes(16, "pair replay: step by step"))).ToArray();
            NodeCallException refused = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, session, DklsMessages.SignRound3, 3, digest, ToNode(1, m2)));
            Assert.Equal(4u, refused.Culprit);
            Assert.Contains(nameof(DklsFailure.CommitmentMismatch), refused.Message, StringComparison.Ordinal);
            await AbortAsync(session, signers);

            CulpritException e = await Assert.ThrowsAsync<CulpritException>(() => coordinator.SignDigestAsync(key.KeyId, SHA256.HashData(TestSeed.Bytes(16, "pair replay")), [], CancellationToken.None));
            Assert.Equal([4u], e.Culprits);
            Assert.Contains(nameof(DklsFailure.CommitmentMismatch), e.Message, StringComparison.Ordinal);
        });

        await SignAndVerifyAsync(coordinator, key, "pair replay: healed");
    }

    /// <summary>
    /// Round-one requests naming a signer set of the wrong shape, sent to node 1 as the coordinator would (signed by it):
    /// party index 0 (identifiers are nonzero; no u32 node id other than 0 is ≡ 0 mod n), a duplicate, more or fewer
    /// signers than the threshold, a set without node 1, and a node that holds no share of the key. Each is a typed
    /// refusal (FailedPrecondition with its reason; no exception crosses the RPC) naming nobody; node 1 then signs with
    /// node 4, so nobody was banned and no session slot was kept.
    /// </summary>
    [Fact]
    public async Task SignerSetsOfTheWrongShape_AreRefusedWithATypedRefusal_NamingNobody_AndNobodyIsBanned()
    {
        (DklsCoordinator coordinator, NodeHealth health, DklsKeyInfo key) = await KeyAsync("dkls-attack-signers");
        (uint[] Signers, string Reason)[] cases =
        [
            ([0, 1], "identifier"),
            ([1, 1], "distinct nodes"),
            ([1, 4, 5], nameof(DklsFailure.InvalidSignerSet)),
            ([1], nameof(DklsFailure.InvalidSignerSet)),
            ([4, 5], "include node 1"),
            ([1, 2], nameof(DklsFailure.InvalidSignerSet)),
        ];
        foreach ((uint[] signers, string reason) in cases)
        {
            var payload = new PayloadWriter().String(key.KeyId).U32((uint)key.Version).U32((uint)signers.Length);
            foreach (uint n in signers)
            {
                payload.U32(n);
            }

            string label = "signers " + string.Join(", ", signers);
            NodeCallException e = await Assert.ThrowsAsync<NodeCallException>(() => Step(1, Cluster.NewSessionId(), DklsMessages.SignRound1, 1, payload.U32(0).ToArray(), []));
            Assert.True(e.Culprit is null, label);
            Assert.True(e.Message.StartsWith("node 1: FailedPrecondition: ", StringComparison.Ordinal), label + ": " + e.Message);
            Assert.True(e.Message.Contains(reason, StringComparison.Ordinal), label + ": " + e.Message);
        }

        await WithoutAsync(health, 5, () => SignAndVerifyAsync(coordinator, key, "after signer sets of the wrong shape"));
    }

    /// <summary>
    /// One signing session of <paramref name="signers"/> driven step by step, its shares combined and verified.
    /// <paramref name="relay"/>(node, messages) is what the test relays to a node in rounds two and three instead of
    /// the messages addressed to it (default: those).
    /// </summary>
    private async Task SignStepByStepAsync(DklsKeyInfo key, uint[] signers, byte[] start, string label, Func<uint, List<Envelope>, List<Envelope>>? relay = null)
    {
        relay ??= (_, relayed) => relayed;
        byte[] session = Cluster.NewSessionId();
        List<Envelope> m1 = await RoundOneAsync(session, signers, start);
        List<Envelope> m2 = await RoundTwoAsync(session, signers, m1, relay);
        byte[] digest = SHA256.HashData(TestSeed.Bytes(16, label));
        byte[] digestPayload = new PayloadWriter().Bytes(digest).ToArray();
        var shares = new List<DklsSignatureShare>();
        byte[]? r = null;
        foreach (uint n in signers)
        {
            Envelope reply = Assert.Single(await Step(n, session, DklsMessages.SignRound3, 3, digestPayload, relay(n, ToNode(n, m2))));
            var reader = new PayloadReader(reply.Payload.Span);
            r = reader.Bytes("R", 33).ToArray();
            shares.Add(DklsSignatureShare.FromBytes(reader.Bytes("share", 256)));
            reader.End();
        }

        DklsSignature sig = DklsCombiner.Combine(key.PublicKey, session, [.. signers.Select(n => Identifier.FromInt(FrostCiphersuite.Secp256k1Sha256, (int)n))], [], r!, digest, shares);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, sig.Signature), label);
    }

    /// <summary>Round two on every signer, each relayed the round-one messages addressed to it (through <paramref name="relay"/> when given).</summary>
    private async Task<List<Envelope>> RoundTwoAsync(byte[] session, uint[] signers, List<Envelope> m1, Func<uint, List<Envelope>, List<Envelope>>? relay = null)
    {
        var m2 = new List<Envelope>();
        foreach (uint n in signers)
        {
            List<Envelope> toNode = ToNode(n, m1);
            m2.AddRange(await Step(n, session, DklsMessages.SignRound2, 2, [], relay is null ? toNode : relay(n, toNode)));
        }

        return m2;
    }

    /// <summary>The messages of <paramref name="all"/> addressed to <paramref name="node"/>, without the session agreement keys (relayed with the delivery).</summary>
    private static List<Envelope> ToNode(uint node, IEnumerable<Envelope> all) => [.. all.Where(m => m.Recipients.Contains(node) && m.Kind != DklsMessages.SignAgreementKey)];

    /// <summary>A signing round-one payload: key, version, <paramref name="signers"/>, the root path.</summary>
    private static byte[] StartPayload(DklsKeyInfo key, uint[] signers)
    {
        var w = new PayloadWriter().String(key.KeyId).U32((uint)key.Version).U32((uint)signers.Length);
        foreach (uint n in signers)
        {
            w.U32(n);
        }

        return w.U32(0).ToArray();
    }

    private async Task AbortAsync(byte[] session, uint[] signers)
    {
        foreach (uint n in signers)
        {
            await Step(n, session, DklsMessages.SignAbort, 4, [], []);
        }
    }

    private async Task<(DklsCoordinator Coordinator, NodeHealth Health, DklsKeyInfo Key)> KeyAsync(string prefix)
    {
        var engine = new ThresholdEngine(_c.Coordinator);
        var coordinator = new DklsCoordinator(engine);
        DklsKeyInfo key = await coordinator.CreateKeyAsync(prefix + "-" + Guid.NewGuid().ToString("N")[..8], 2, [1, 4, 5], CancellationToken.None);
        return (coordinator, engine.Health, key);
    }

    /// <summary>Round one and its delivery on every signer: the round-one broadcasts, session keys and sealed messages.</summary>
    private async Task<List<Envelope>> RoundOneAsync(byte[] session, uint[] signers, byte[] start)
    {
        var m1 = new List<Envelope>();
        foreach (uint n in signers)
        {
            m1.AddRange(await Step(n, session, DklsMessages.SignRound1, 1, start, []));
        }

        var delivered = new List<Envelope>();
        foreach (uint n in signers)
        {
            delivered.AddRange(await Step(n, session, DklsMessages.SignDeliver, 1, [], m1.Where(m => m.Recipients.Contains(n) && m.Kind == DklsMessages.SignAgreementKey)));
        }

        return [.. m1, .. delivered];
    }

    private Task<IReadOnlyList<Envelope>> Step(uint node, byte[] session, string kind, uint round, byte[] payload, IEnumerable<Envelope> relayed) =>
        _c.Coordinator.Node(node).StepAsync(_c.Coordinator.Request(session, kind, round, [node], payload), relayed, Timeout, CancellationToken.None);

    private static async Task SignAndVerifyAsync(DklsCoordinator coordinator, DklsKeyInfo key, string label)
    {
        byte[] digest = SHA256.HashData(TestSeed.Bytes(16, label));
        DklsSignatureResult sig = await coordinator.SignDigestAsync(key.KeyId, digest, [], CancellationToken.None);
        Assert.True(EcdsaSecp256k1.Instance.Verify(key.PublicKey.GroupPublicKey, digest, sig.Signature), label);
    }
}
