using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Server.Threshold.Sharing;

/// <summary>
/// The distributed key generation rounds of a rotation run on the cluster, for every protocol whose shares are Shamir
/// shares on a FROST ciphersuite's group (FROST keys; ecdsa-dkls23 keys on secp256k1, before their pairwise setup): the
/// Pedersen DKG with Feldman commitments and a proof of knowledge per dealer (FROST paper, Figure 1) as Conclave.Threshold
/// <see cref="Dkg"/> implements it, with a hash commitment broadcast before any round-one package is revealed, an echo
/// of every broadcast, signed confirmations and the agreed chain code; for a refresh or a reshare the same rounds
/// re-share the old key (docs/ROTATION.md). The nodes' side is the DKG handlers (message kinds <c>frost.dkg.*</c>). A
/// dealer that equivocates in a broadcast, or whose share a valid complaint proves wrong (<see cref="DkgComplaints"/>),
/// is convicted (<see cref="ThresholdEngine.ConvictAsync"/>) and the run aborts.
/// </summary>
public sealed class DkgRounds
{
    private readonly ThresholdEngine _engine;

    internal DkgRounds(ThresholdEngine engine) => _engine = engine;

    /// <summary>
    /// The DKG rounds of a run (commit, reveal, round two, finish, complete) up to every party reporting the same public key
    /// package. <paramref name="suite"/> is the FROST ciphersuite the shares are on; <paramref name="plan"/>'s scheme is the
    /// protocol's (a frost scheme, or ecdsa-dkls23 with <see cref="FrostCiphersuite.Secp256k1Sha256"/>: its nodes keep the
    /// new share for their own rounds), <paramref name="oldKey"/> the key a refresh or reshare re-shares, and
    /// <paramref name="faultAsync"/> the protocol's rotation fault injection (boundaries round1, reveal, round2, finish).
    /// </summary>
    public async Task<(PublicKeyPackage Result, Rotation.RotationTranscript Transcript)> RunAsync(byte[] session, RotationPlan plan, FrostCiphersuite suite, PublicKeyPackage? oldKey,
        Func<RotationKind, string, Task> faultAsync, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(faultAsync);
        IReadOnlyList<uint> dealers = plan.Dealers;
        IReadOnlyList<uint> receivers = plan.Receivers;
        uint[] everyone = [.. dealers.Union(receivers).Order()];
        TimeSpan timeout = _engine.Cluster.RoundTimeout * 5;
        var start = new PayloadWriter().U32((uint)plan.DkgKind).String(plan.KeyId).String(plan.Scheme).U32((uint)plan.Threshold).U32((uint)dealers.Count);
        foreach (uint d in dealers)
        {
            start.U32(d);
        }

        start.U32((uint)receivers.Count);
        foreach (uint r in receivers)
        {
            start.U32(r);
        }

        start.U32((uint)plan.FromVersion).Bytes(oldKey?.ToBytes() ?? []).U32((uint)plan.OldHolders.Count);
        foreach (uint o in plan.OldHolders)
        {
            start.U32(o);
        }

        byte[] startPayload = start.ToArray();

        // Commit step: everyone starts (and records the run; an old holder that neither deals nor receives records only
        // that it must erase once every receiver committed); each dealer broadcasts only a hash commitment to its
        // round-one package and chain-code contribution, with its per-run signing key.
        Dictionary<uint, IReadOnlyList<Envelope>> started = await AllAsync(plan.Everyone,
            n => _engine.Cluster.Node(n).StepAsync(_engine.Cluster.Request(session, FrostMessages.DkgStart, 1, [n], startPayload), [], timeout, ct)).ConfigureAwait(false);
        List<Envelope> commitments = await BroadcastsAsync(session, plan, started, FrostMessages.DkgCommitment, "commitments").ConfigureAwait(false);

        // Every dealer and receiver also announced its ephemeral agreement key for this run, signed by its identity key
        // (RunAgreementKey); the round-two shares are sealed between these keys, never the long-term ones.
        // Exactly one from each dealer and receiver's own reply, else that node is named (old holders that only wait announce none).
        List<Envelope> runKeys = RunAgreementKeys.OneEach(started.Where(r => everyone.Contains(r.Key)).ToDictionary(r => r.Key, r => r.Value), FrostMessages.DkgAgreementKey);
        await faultAsync(plan.Kind, "round1").ConfigureAwait(false); // boundary name kept from before the commit step

        // Reveal (round one): each dealer and receiver gets every other dealer's commitment and every other participant's
        // run agreement key; a node reveals its
        // round-one package (Feldman commitments and proof) only once exactly one commitment of every other dealer arrived.
        Dictionary<uint, IReadOnlyList<Envelope>> round1 = await AllAsync(everyone,
            n => _engine.Cluster.Node(n).StepAsync(_engine.Cluster.Request(session, FrostMessages.DkgReveal, 2, [n], []),
                commitments.Where(c => c.Sender != n).Concat(runKeys.Where(k => k.Sender != n)), timeout, ct)).ConfigureAwait(false);
        List<Envelope> broadcasts = await BroadcastsAsync(session, plan, round1, FrostMessages.DkgRound1, "round-one packages").ConfigureAwait(false);
        await faultAsync(plan.Kind, "reveal").ConfigureAwait(false);

        // Round two: each participant gets every other dealer's broadcast, checks each against its commitment, and
        // deals signed shares (with its chain-code contribution) sealed to their receivers.
        Dictionary<uint, IReadOnlyList<Envelope>> round2 = await AllAsync(everyone,
            n => _engine.Cluster.Node(n).StepAsync(_engine.Cluster.Request(session, FrostMessages.DkgRound2, 3, [n], []), broadcasts.Where(b => b.Sender != n), timeout, ct)).ConfigureAwait(false);
        List<Envelope> shares = [.. round2.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgShare)];
        await faultAsync(plan.Kind, "round2").ConfigureAwait(false);

        // Finish: each receiver gets the shares addressed to it, checks them and its echo, and confirms — or, when a
        // share or contribution does not match its dealer's commitments, answers with signed complaints carrying the
        // dealer's signed message, which the coordinator judges (a valid one convicts the dealer, a false one the
        // complainer) before the run aborts.
        Dictionary<uint, IReadOnlyList<Envelope>> confirms = await FinishStepAsync(session, plan, suite, oldKey, receivers, commitments, broadcasts,
            n => _engine.Cluster.Node(n).StepAsync(_engine.Cluster.Request(session, FrostMessages.DkgFinish, 4, [n], []), shares.Where(s => s.Recipients.Contains(n)), timeout, ct), ct).ConfigureAwait(false);
        List<Envelope> confirmations = [.. confirms.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.DkgConfirm)];
        if (confirmations.Count != receivers.Count)
        {
            throw new QuorumUnavailableException("not every receiver confirmed the new key");
        }

        await faultAsync(plan.Kind, "finish").ConfigureAwait(false);

        // Complete: every receiver checks every confirmation and stores the new share as pending; a leaving dealer
        // checks the new members' confirmations against what it dealt (Dkg.ConfirmAsDealer).
        Dictionary<uint, IReadOnlyList<Envelope>> done = await AllAsync(everyone,
            n => _engine.Cluster.Node(n).StepAsync(_engine.Cluster.Request(session, FrostMessages.DkgComplete, 5, [n], []), confirmations.Where(c => c.Sender != n), timeout, ct)).ConfigureAwait(false);

        PublicKeyPackage? result = null;
        foreach ((uint node, IReadOnlyList<Envelope> reply) in done)
        {
            if (reply.Count != 1 || reply[0].Kind != FrostMessages.DkgDone)
            {
                throw new CulpritException([node], $"node {node} did not report the prepared key");
            }

            var r = new PayloadReader(reply[0].Payload.Span);
            int v = (int)r.U32("version");
            var pkp = PublicKeyPackage.FromBytes(suite, r.Bytes("publicKeyPackage"));
            r.End();
            if (v != plan.ToVersion)
            {
                throw new CulpritException([node], $"node {node} prepared version {v}, not {plan.ToVersion}");
            }

            if (result is null)
            {
                result = pkp;
            }
            else if (!result.PublicEquals(pkp))
            {
                throw new CulpritException([node], $"node {node} prepared a different key than the others");
            }
        }

        if (result is null || (oldKey is not null && !result.GroupPublicKey.AsSpan().SequenceEqual(oldKey.GroupPublicKey))
            || result.Threshold != plan.Threshold || result.ParticipantCount != receivers.Count)
        {
            throw new QuorumUnavailableException("the run did not produce the expected group key");
        }

        var transcript = new Rotation.RotationTranscript(Rotation.RotationTranscript.CurrentFormat, Convert.ToHexStringLower(session), TranscriptKind(plan.Kind),
            plan.KeyId, plan.Scheme, plan.Threshold, [.. dealers], [.. receivers], plan.FromVersion, plan.ToVersion,
            oldKey is null ? null : Convert.ToHexStringLower(oldKey.ToBytes()), Convert.ToHexStringLower(result.ToBytes()),
            [.. broadcasts.OrderBy(b => b.Sender).Select(b => Convert.ToHexStringLower(Google.Protobuf.MessageExtensions.ToByteArray(b)))],
            [.. confirmations.OrderBy(c => c.Sender).Select(c => Convert.ToHexStringLower(Google.Protobuf.MessageExtensions.ToByteArray(c)))]);
        return (result, transcript);
    }

    /// <summary>
    /// <see cref="OneBroadcastEach"/>; a node it names is marked suspect and reported (the server's audit entry) as a
    /// dealer convicted by a complaint is, since its own signed envelopes prove it.
    /// </summary>
    private async Task<List<Envelope>> BroadcastsAsync(byte[] session, RotationPlan plan, IReadOnlyDictionary<uint, IReadOnlyList<Envelope>> replies, string kind, string what)
    {
        try
        {
            return OneBroadcastEach(replies, kind, what);
        }
        catch (CulpritException e)
        {
            await _engine.ConvictAsync(plan.KeyId, session, e.Reasons).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The non-empty broadcasts of <paramref name="kind"/> in each node's own reply (a dealer's commitment or round-one
    /// package; a node that only receives answers with an empty one). A broadcast goes to every participant, so a node
    /// whose reply holds two different ones, or one addressed to some peers only, is trying to show different peers
    /// different data (equivocation; the echo of Dkg.Round2 would catch it later, naming nobody): it is named here, with
    /// its own signed envelopes as evidence, before anything is relayed.
    /// </summary>
    internal static List<Envelope> OneBroadcastEach(IReadOnlyDictionary<uint, IReadOnlyList<Envelope>> replies, string kind, string what)
    {
        var broadcasts = new List<Envelope>(replies.Count);
        foreach ((uint node, IReadOnlyList<Envelope> messages) in replies.OrderBy(r => r.Key))
        {
            Envelope[] own = [.. messages.Where(e => e.Kind == kind && e.Payload.Length > 0)];
            if (own.Length > 1 || own.Any(e => e.Recipients.Count > 0))
            {
                throw new CulpritException([new CulpritReason(node, CulpritReason.DkgEquivocation)],
                    $"node {node} sent different {what} to different peers ({own.Length} signed, {own.Count(e => e.Recipients.Count > 0)} addressed to some peers only)")
                {
                    Evidence = [.. own.Select(e => Google.Protobuf.MessageExtensions.ToByteArray(e))],
                };
            }

            broadcasts.AddRange(own);
        }

        return broadcasts;
    }

    private static string TranscriptKind(RotationKind kind) => kind switch
    {
        RotationKind.KeyGeneration => "key-generation",
        RotationKind.Refresh => "refresh",
        RotationKind.Reshare => "reshare",
        _ => throw new InvalidOperationException("repair runs have no DKG transcript"),
    };

    /// <summary>
    /// The finish step on every receiver. Complaints are judged first (they carry proof, whatever else failed: see
    /// <see cref="DkgComplaints"/>); then a node's refusal is reported as <see cref="RotationEngine{TKey}.AllAsync"/> reports it.
    /// </summary>
    private async Task<Dictionary<uint, IReadOnlyList<Envelope>>> FinishStepAsync(byte[] session, RotationPlan plan, FrostCiphersuite suite, PublicKeyPackage? oldKey,
        IReadOnlyList<uint> receivers, IReadOnlyList<Envelope> commitments, IReadOnlyList<Envelope> broadcasts, Func<uint, Task<IReadOnlyList<Envelope>>> call, CancellationToken ct)
    {
        var tasks = receivers.ToDictionary(n => n, call);
        try
        {
            await Task.WhenAll(tasks.Values).ConfigureAwait(false);
        }
        catch (NodeCallException)
        {
            // Judged below, after the complaints of the nodes that answered.
        }

        List<Envelope> complaints = [.. tasks.Values.Where(t => t.IsCompletedSuccessfully).SelectMany(t => t.Result).Where(e => e.Kind == FrostMessages.DkgComplaint)];
        if (complaints.Count > 0)
        {
            IReadOnlyList<CulpritReason> convicted = DkgComplaints.Judge(session, plan, suite, oldKey, commitments, broadcasts, complaints);
            await _engine.ConvictAsync(plan.KeyId, session, convicted).ConfigureAwait(false);
            throw new CulpritException(convicted, "DKG complaints judged: " + string.Join("; ", convicted.Select(DkgComplaints.Describe)));
        }

        // No complaint: a refusal is reported as before (the first failure, naming the culprit the node gave).
        return await AllAsync(receivers, n => tasks[n]).ConfigureAwait(false);
    }

    /// <summary>Runs one step on several nodes in parallel; a failure names the node.</summary>
    private static Task<Dictionary<uint, IReadOnlyList<Envelope>>> AllAsync(IEnumerable<uint> nodes, Func<uint, Task<IReadOnlyList<Envelope>>> call) =>
        RotationEngine<IThresholdKey>.AllAsync(nodes, call);
}
