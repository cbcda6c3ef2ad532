using System.Security.Cryptography;
using Conclave.Crypto;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Node.Rpc;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;
using Conclave.Threshold;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using AeadEnvelope = Conclave.Crypto.Aead.Envelope;

namespace Conclave.Node.Threshold.Sharing;

/// <summary>
/// Distributed key generation, refresh and reshare on a node, for every protocol whose shares are Shamir shares on a
/// FROST ciphersuite's group (FROST keys, and ecdsa-dkls23 keys through <see cref="IDkgFollowUp"/>): the Conclave.Threshold
/// DKG engine driven over the coordinator (the server's DkgRounds), one step per round; a FROST key's share is stored in
/// <see cref="FrostNodeState"/>, and the message kinds keep their <c>frost.dkg.*</c> names. Each dealer first broadcasts only a commitment (<see cref="Dkg.Commit"/>: hashes of
/// its round-one package and chain-code contribution, and a per-run signing key); the coordinator relays every other
/// dealer's commitment in the reveal step, and only then does the node reveal its round-one package
/// (<see cref="Dkg.Round1(DkgCommitSecret, IReadOnlyCollection{DkgCommitment})"/>), so no dealer can choose its
/// package after seeing the others'. Round-one packages are broadcast (signed by their sender), round-two shares
/// are sealed between per-run ephemeral X25519 keys (<see cref="RunAgreementKey"/>: every dealer and receiver announces
/// a fresh key signed by its identity key and bound to the run, key and node in the commit step, and erases its private
/// half once it has sealed and opened its shares; HKDF bound to session, sender, recipient and both ephemeral keys, then
/// XChaCha20-Poly1305), so recorded traffic stays closed to whoever later takes a node's long-term keys and KEK;
/// confirmations are broadcast, and a new share is stored only after every
/// receiver's confirmation checked out. For refresh and reshare the old share stays in its key version until the
/// coordinator, having seen every node store the new one, sends the retire step (DESIGN.md safety rule 2).
/// Start payload: kind, keyId, scheme, threshold, dealers, receivers, current version, old public key package.
/// A scheme with an <see cref="IDkgFollowUp"/> (ecdsa-dkls23) runs the same rounds and hands the completed share to its
/// protocol instead of storing it.
/// </summary>
public sealed class DkgHandlers(FrostNodeState state, ClusterManifest manifest, IReadOnlyList<IDkgFollowUp>? followUps = null) : IProtocolHandler
{
    private readonly IReadOnlyList<IDkgFollowUp> _followUps = followUps ?? [];

    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(5);
    private readonly SessionTable<RunState> _runs = new(SessionLifetime);

    public IReadOnlyCollection<string> Kinds { get; } =
        [FrostMessages.DkgStart, FrostMessages.DkgReveal, FrostMessages.DkgRound2, FrostMessages.DkgFinish, FrostMessages.DkgComplete];

    /// <summary>Drops the in-memory state of a run (after abort).</summary>
    internal void Drop(string runId) => _runs.Drop(runId);

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        Sweep();
        return await HandlerSupport.RefuseOnFailure<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            FrostMessages.DkgStart => await StartAsync(context, cancellationToken).ConfigureAwait(false),
            FrostMessages.DkgReveal => Reveal(context),
            FrostMessages.DkgRound2 => Round2(context),
            FrostMessages.DkgFinish => Finish(context),
            FrostMessages.DkgComplete => await CompleteAsync(context, cancellationToken).ConfigureAwait(false),
            _ => throw new ProtocolException($"unknown kind {context.Request.Kind}"),
        }, () => Forget(context.SessionId)).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<OutgoingMessage>> StartAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        var kind = (DkgRunKind)r.U32("kind");
        string keyId = r.String("keyId");
        string scheme = r.String("scheme");
        int threshold = (int)r.U32("threshold");
        uint[] dealers = r.NodeIds("dealers");
        uint[] receivers = r.NodeIds("receivers");
        int version = (int)r.U32("version");
        byte[] oldKeyBytes = r.Bytes("oldKey").ToArray();
        uint[] oldHolders = r.NodeIds("oldHolders", allowEmpty: true);
        r.End();
        IDkgFollowUp? followUp = _followUps.FirstOrDefault(f => f.Handles(scheme));
        FrostCiphersuite? suite = followUp?.Suite;
        if (suite is null && !FrostCiphersuite.TryGet(scheme, out suite))
        {
            throw new ProtocolException($"unknown FROST scheme {scheme}");
        }

        Identifier self = Identifier.FromInt(suite, (int)state.NodeId);
        bool dealer = dealers.Contains(state.NodeId);
        bool bystander = !dealer && !receivers.Contains(state.NodeId);
        if (bystander && (kind != DkgRunKind.Reshare || !oldHolders.Contains(state.NodeId)))
        {
            throw new ProtocolException($"node {state.NodeId} is not a participant of this run");
        }

        string key = Convert.ToHexStringLower(ctx.SessionId);
        if (_runs.ContainsKey(key) || await state.Store.Rotations.GetAsync(key, ct).ConfigureAwait(false) is not null)
        {
            throw new ProtocolException("this session already started");
        }

        if (_runs.Values.Any(run => run.KeyId == keyId && run.InProgress))
        {
            throw new ProtocolException($"node {state.NodeId} is already running a rotation of key {keyId}");
        }

        await NodeRuns.DiscardStaleRunAsync(state.Store, state.NodeId, keyId, ct).ConfigureAwait(false);

        KeyPackage? current = null;
        KeyVersions<KeyPackage>.ShareLease? lease = null;
        bool rejoining = false;
        try
        {
            DkgSession session;
            switch (kind)
            {
                case DkgRunKind.KeyGeneration:
                    if (await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false) is not null)
                    {
                        throw new ProtocolException($"key {keyId} already exists on node {state.NodeId}");
                    }

                    session = DkgSession.ForKeyGeneration(suite, ctx.SessionId, threshold, Ids(suite, receivers));
                    break;
                case DkgRunKind.Refresh:
                case DkgRunKind.Reshare:
                    var oldKey = PublicKeyPackage.FromBytes(suite, oldKeyBytes);
                    KeyRecord? record = await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false);
                    // A node evicted from the key and re-admitted (docs/ROTATION.md "Re-admitting") still holds the version it had
                    // when the key was moved away from it, older than the committee's. It may join a reshare as a new member
                    // only (it neither deals nor is an old holder, so nothing of the run rests on its stale share); its stale
                    // share is erased when it commits the new version (RotationHandlers), never before. So for a FROST key and
                    // for a protocol that goes on after the DKG (DKLs23: its pairwise setup is made afresh with every peer).
                    rejoining = record is not null && record.State != KeyState.Destroyed && record.Version < version && kind == DkgRunKind.Reshare
                        && !dealer && !oldHolders.Contains(state.NodeId) && receivers.Contains(state.NodeId);
                    if (record is not null && record.State != KeyState.Destroyed && record.Version != version && !rejoining)
                    {
                        throw new ProtocolException($"node {state.NodeId} holds key {keyId} at version {record.Version}, not {version}");
                    }

                    if (dealer)
                    {
                        // This node's own share is leased for the step (KeyVersions.LeaseAtVersionAsync); a repair follow-up's is its own copy.
                        lease = followUp is null ? await state.LeaseKeyAtVersionAsync(keyId, version, ct).ConfigureAwait(false) : null;
                        current = lease is not null
                            ? lease.Share
                            : await followUp!.CurrentShareAsync(keyId, version, ct).ConfigureAwait(false);
                        if (!current.PublicKeyPackage.PublicEquals(oldKey))
                        {
                            throw new ProtocolException("the coordinator's copy of the key differs from this node's");
                        }
                    }

                    session = kind == DkgRunKind.Refresh
                        ? DkgSession.ForRefresh(ctx.SessionId, oldKey)
                        : DkgSession.ForReshare(ctx.SessionId, oldKey, Ids(suite, dealers), threshold, Ids(suite, receivers));
                    break;
                default:
                    throw new ProtocolException("unknown DKG run kind");
            }

            // The run is recorded durably before any value of it leaves the node (NodeRuns.BeginAsync).
            await NodeRuns.BeginAsync(state.Store, state.NodeId, key, keyId, kind, version, scheme, dealers, receivers, oldHolders, ct).ConfigureAwait(false);

            if (bystander)
            {
                // An old holder that neither deals nor receives: it only waits for the retire (every receiver's signed
                // commit), then erases its share.
                return [];
            }

            // Commit step: only the commitment leaves the node; the round-one package stays inside the commit secret until
            // every other dealer's commitment has arrived (reveal step).
            // With it, the node's ephemeral agreement key for this run (forward secrecy of the round-two shares).
            DkgCommitSecret commit = state.DkgFaults?.Commit is { } cheat ? cheat(session, self, current) : Dkg.Commit(session, self, current);
            RunAgreementKey agreement;
            try
            {
                agreement = RunAgreementKey.Generate(ctx.Identity, ctx.SessionId, keyId);
            }
            catch
            {
                commit.Dispose();
                throw;
            }

            uint[] participants = [.. dealers.Union(receivers).Where(n => n != state.NodeId).Order()];
            var run = new RunState(kind, keyId, session, version, receivers.Contains(state.NodeId), participants)
            {
                Commit = commit, Agreement = agreement, FollowUp = followUp, Rejoining = rejoining,
            };
            if (!_runs.TryAdd(key, run))
            {
                run.Dispose();
                throw new ProtocolException("this session already started");
            }

            if (commit.Commitment is { } real && state.DkgFaults?.Commitments is { } equivocate)
            {
                // Testing only (DkgFaults): other commitments, or several, addressed as the hook says.
                return
                [
                    .. equivocate(real, participants).Select(c => new OutgoingMessage(FrostMessages.DkgCommitment, 1, c.To, c.Commitment.ToBytes())),
                    new OutgoingMessage(FrostMessages.DkgAgreementKey, 1, [], agreement.Announcement),
                ];
            }

            byte[] payload = commit.Commitment?.ToBytes() ?? [];
            return
            [
                new OutgoingMessage(FrostMessages.DkgCommitment, 1, [], payload),
                new OutgoingMessage(FrostMessages.DkgAgreementKey, 1, [], agreement.Announcement),
            ];
        }
        finally
        {
            if (followUp is not null)
            {
                current?.Dispose(); // the follow-up's own copy of the old share (the commit secret copied what it needs)
            }

            lease?.Dispose();
        }
    }

    /// <summary>
    /// Reveal step: the coordinator relays every other dealer's commitment (each signed by its sender); the node checks
    /// that each was sent by the dealer it names and that exactly one arrived from every other dealer (Dkg.Round1), and
    /// only then reveals its round-one package.
    /// </summary>
    private IReadOnlyList<OutgoingMessage> Reveal(StepContext ctx)
    {
        RunState run = Get(ctx.SessionId);
        DkgCommitSecret commit = Interlocked.Exchange(ref run.Commit, null) ?? throw new ProtocolException("this run was already revealed");
        FrostCiphersuite suite = run.Session.Suite;
        var received = new List<DkgCommitment>();
        try
        {
            var peerKeys = new Dictionary<uint, byte[]>();
            foreach (Rpc.Envelope e in ctx.Relayed)
            {
                if (e.Kind == FrostMessages.DkgAgreementKey && e.Round == 1)
                {
                    if (!run.Participants.Contains(e.Sender))
                    {
                        // Not evidence against the sender: a coordinator may have started the same session with it under
                        // another participant list. Refused, nobody named.
                        throw new ProtocolException($"a run agreement key of node {e.Sender}, not a participant of this run, was relayed: refused, nobody named");
                    }

                    if (!peerKeys.TryAdd(e.Sender, RunAgreementKey.VerifyAnnouncement(e.Payload.Span, manifest, e.Sender, ctx.SessionId, run.KeyId)))
                    {
                        throw new ProtocolException($"node {e.Sender} announced two run agreement keys", e.Sender);
                    }

                    continue;
                }

                if (e.Kind != FrostMessages.DkgCommitment || e.Round != 1)
                {
                    throw new ProtocolException($"reveal expects commitments, got '{e.Kind}' from {e.Sender}", e.Sender);
                }

                if (e.Payload.Length > 0)
                {
                    DkgCommitment c;
                    try
                    {
                        c = DkgCommitment.FromBytes(suite, e.Payload.Span);
                    }
                    catch (CryptoFormatException)
                    {
                        throw new ProtocolException($"node {e.Sender} sent a malformed commitment", e.Sender);
                    }

                    if (!c.Sender.Equals(Identifier.FromInt(suite, (int)e.Sender)))
                    {
                        throw new ProtocolException($"node {e.Sender} sent a commitment in another participant's name", e.Sender);
                    }

                    received.Add(c);
                }
            }

            foreach (uint peer in run.Participants)
            {
                if (!peerKeys.ContainsKey(peer))
                {
                    // A message the coordinator did not relay is not evidence against its sender (the coordinator names a
                    // node whose own reply held no key).
                    throw new ProtocolException($"no run agreement key of node {peer} was relayed: refused, nobody named");
                }
            }

            run.PeerKeys = peerKeys;
        }
        catch
        {
            commit.Dispose();
            throw;
        }

        DkgRound1Secret round1 = Dkg.Round1(commit, received);
        run.Round1 = round1;
        if (round1.Package is { } real && state.DkgFaults?.Round1 is { } equivocate)
        {
            // Testing only (DkgFaults): other round-one packages, or several, addressed as the hook says.
            return [.. equivocate(real, run.Participants).Select(p => new OutgoingMessage(FrostMessages.DkgRound1, 2, p.To, p.Package.ToBytes()))];
        }

        byte[] payload = round1.Package?.ToBytes() ?? [];
        return [new OutgoingMessage(FrostMessages.DkgRound1, 2, [], payload)];
    }

    private IReadOnlyList<OutgoingMessage> Round2(StepContext ctx)
    {
        RunState run = Get(ctx.SessionId);
        DkgRound1Secret round1 = Interlocked.Exchange(ref run.Round1, null) ?? throw new ProtocolException("round two was already computed");
        FrostCiphersuite suite = run.Session.Suite;
        var received = new List<DkgRound1Package>();
        foreach (Rpc.Envelope e in ctx.Relayed)
        {
            if (e.Kind != FrostMessages.DkgRound1 || e.Round != 2)
            {
                throw new ProtocolException($"round two expects round-one packages, got '{e.Kind}' from {e.Sender}", e.Sender);
            }

            if (e.Payload.Length > 0)
            {
                DkgRound1Package p = DkgRound1Package.FromBytes(suite, e.Payload.Span);
                if (!p.Sender.Equals(Identifier.FromInt(suite, (int)e.Sender)))
                {
                    throw new ProtocolException($"node {e.Sender} sent a package in another participant's name", e.Sender);
                }

                received.Add(p);
            }
        }

        (DkgRound2Secret secret, IReadOnlyList<DkgRound2Package> outgoing) = state.DkgFaults?.Round2 is { } cheat ? cheat(round1, received) : Dkg.Round2(round1, received);
        var messages = new List<OutgoingMessage>(outgoing.Count);
        RunAgreementKey agreement = run.Agreement ?? throw new ProtocolException("this node has no run agreement key for the session");
        try
        {
            foreach (DkgRound2Package p in outgoing)
            {
                using (p)
                {
                    uint recipient = FrostNodeIds.ToNode(p.Recipient);
                    using SecretBuffer plain = p.Export();
                    messages.Add(new OutgoingMessage(FrostMessages.DkgShare, 3, [recipient],
                        HandlerSupport.SealTo(agreement, run.PeerKey(recipient), FrostMessages.DkgShareContext(ctx.SessionId, state.NodeId, recipient), plain.ReadOnlySpan)));
                }
            }
        }
        catch
        {
            secret.Dispose();
            throw;
        }

        if (!run.Receives)
        {
            // A dealer that does not receive has sealed everything it will: its run key is erased now.
            run.EraseAgreementKey();
        }

        // Receivers finish with it; a dealer that does not receive (reshare away from this node) keeps it to check the
        // new members' confirmations (Dkg.ConfirmAsDealer) before it reports the run prepared.
        run.Round2 = secret;
        return messages;
    }

    private IReadOnlyList<OutgoingMessage> Finish(StepContext ctx)
    {
        RunState run = Get(ctx.SessionId);
        DkgRound2Secret secret = Interlocked.Exchange(ref run.Round2, null) ?? throw new ProtocolException("this node has no round-two state for the session");
        FrostCiphersuite suite = run.Session.Suite;
        var received = new List<DkgRound2Package>();
        try
        {
            foreach (Rpc.Envelope e in ctx.Relayed)
            {
                if (e.Kind != FrostMessages.DkgShare || e.Recipients.Count != 1 || e.Recipients[0] != state.NodeId)
                {
                    throw new ProtocolException($"finish expects shares addressed to node {state.NodeId}, got '{e.Kind}' from {e.Sender}", e.Sender);
                }

                using SecretBuffer plain = HandlerSupport.OpenFrom(run.Agreement ?? throw new ProtocolException("this node has no run agreement key for the session"),
                    run.PeerKey(e.Sender), e.Sender, FrostMessages.DkgShareContext(ctx.SessionId, e.Sender, state.NodeId), e.Payload.ToByteArray(), "share");
                DkgRound2Package p = DkgRound2Package.Import(suite, plain.ReadOnlySpan);
                if (!p.Sender.Equals(Identifier.FromInt(suite, (int)e.Sender)))
                {
                    p.Dispose();
                    throw new ProtocolException($"node {e.Sender} sent a share in another participant's name", e.Sender);
                }

                received.Add(p);
            }
        }
        catch
        {
            secret.Dispose();
            foreach (DkgRound2Package p in received)
            {
                p.Dispose();
            }

            throw;
        }
        finally
        {
            // Every share addressed to this node is opened (or the step failed): the run key is erased either way, unless
            // a follow-up protocol (DKLs23's pairwise setup) seals its own messages of this run with it; it then erases
            // it itself. A failed step drops the run, which erases it too.
            if (run.FollowUp is null)
            {
                run.EraseAgreementKey();
            }
        }

        if (state.DkgFaults?.Complain is { } lie)
        {
            // Testing only (DkgFaults): complain whatever arrived.
            IReadOnlyList<byte[]> made;
            try
            {
                made = lie(received);
            }
            finally
            {
                secret.Dispose();
                foreach (DkgRound2Package p in received)
                {
                    p.Dispose();
                }
            }

            Forget(ctx.SessionId);
            return [ComplaintMessage(made)];
        }

        DkgPendingKey pending;
        try
        {
            pending = Dkg.Finish(secret, received);
        }
        catch (ThresholdProtocolException e) when (e.Complaints.Count > 0)
        {
            // A share or chain-code contribution that does not match its dealer's commitments comes with the dealer's own
            // signed message as evidence: the node sends it to the coordinator (signed by this node, in place of a
            // confirmation) rather than a bare refusal, so the coordinator can check who lied (Dkg.VerifyComplaint). The
            // evidence reveals only this run's share from that dealer, and the run aborts.
            Forget(ctx.SessionId);
            return [ComplaintMessage([.. e.Complaints.Select(c => c.ToBytes())])];
        }

        run.Pending = pending;
        byte[] payload = new PayloadWriter().Bytes(pending.Confirmation.ToBytes()).Bytes(pending.PublicKeyPackage.ToBytes()).ToArray();
        return [new OutgoingMessage(FrostMessages.DkgConfirm, 4, [], payload)];
    }

    private async Task<IReadOnlyList<OutgoingMessage>> CompleteAsync(StepContext ctx, CancellationToken ct)
    {
        RunState run = Get(ctx.SessionId);
        string runId = Convert.ToHexStringLower(ctx.SessionId);
        FrostCiphersuite suite = run.Session.Suite;
        var confirmations = new List<DkgConfirmation>();
        foreach (Rpc.Envelope e in ctx.Relayed)
        {
            if (e.Kind != FrostMessages.DkgConfirm)
            {
                throw new ProtocolException($"complete expects confirmations, got '{e.Kind}' from {e.Sender}", e.Sender);
            }

            var pr = new PayloadReader(e.Payload.Span);
            DkgConfirmation c = DkgConfirmation.FromBytes(suite, pr.Bytes("confirmation"));
            _ = pr.Bytes("publicKeyPackage");
            pr.End();
            if (!c.Sender.Equals(Identifier.FromInt(suite, (int)e.Sender)))
            {
                throw new ProtocolException($"node {e.Sender} sent a confirmation in another participant's name", e.Sender);
            }

            confirmations.Add(c);
        }

        int toVersion = run.Kind == DkgRunKind.KeyGeneration ? 1 : run.Version + 1;
        DkgPendingKey? pending = Interlocked.Exchange(ref run.Pending, null);
        if (pending is null)
        {
            // A leaving dealer (reshare away from this node): it checks every new member's confirmation against what it
            // dealt (Dkg.ConfirmAsDealer) and reports the run prepared; it stores nothing and keeps its old share until
            // a retire carries every receiver's signed commit.
            DkgRound2Secret secret = Interlocked.Exchange(ref run.Round2, null) ?? throw new ProtocolException("this node has no pending key for the session");
            using (secret)
            {
                if (run.Session.Receivers.Contains(Identifier.FromInt(suite, (int)state.NodeId)))
                {
                    throw new ProtocolException("a receiver completes only after finish");
                }

                PublicKeyPackage confirmed = Dkg.ConfirmAsDealer(secret, confirmations);
                if (run.FollowUp is not null)
                {
                    // The run's result is the follow-up protocol's (made by the new committee's own rounds, which this node
                    // does not take part in): the node stays Started and, like an old holder that did not deal, takes
                    // the receivers' signed commits as the word on what was made before it erases its share.
                    return [new OutgoingMessage(FrostMessages.DkgDone, 5, [0], new PayloadWriter().U32((uint)toVersion).Bytes(confirmed.ToBytes()).ToArray())];
                }

                await state.Store.Rotations.TransitionAsync(runId, RotationState.Started, RotationState.Prepared, confirmed.ToBytes(), cancellationToken: ct).ConfigureAwait(false);
                return [new OutgoingMessage(FrostMessages.DkgDone, 5, [0], new PayloadWriter().U32((uint)toVersion).Bytes(confirmed.ToBytes()).ToArray())];
            }
        }

        if (run.FollowUp is { } next)
        {
            // The protocol this DKG makes shares for goes on with its own rounds: the share stays in memory for them,
            // nothing is stored yet, and the run stays Started on this node until that protocol prepares it.
            using (pending)
            {
                confirmations.Add(pending.Confirmation);
                RunAgreementKey agreement = Interlocked.Exchange(ref run.Agreement, null) ?? throw new ProtocolException("this node has no run agreement key for the session");
                byte[] done;
                try
                {
                    IReadOnlyDictionary<uint, byte[]> peerKeys = run.PeerKeys ?? throw new ProtocolException("the run agreement keys were not exchanged for this session");
                    KeyPackage share = pending.Complete(confirmations);
                    done = new PayloadWriter().U32((uint)toVersion).Bytes(share.PublicKeyPackage.ToBytes()).ToArray();
                    next.Hold(runId, run.KeyId, run.Kind, run.Version, toVersion, share, agreement, peerKeys, run.Rejoining); // owns both from here
                }
                catch
                {
                    agreement.Dispose();
                    throw;
                }

                return [new OutgoingMessage(FrostMessages.DkgDone, 5, [0], done)];
            }
        }

        try
        {
            confirmations.Add(pending.Confirmation);
            using KeyPackage complete = pending.Complete(confirmations);
            using SecretBuffer material = complete.Export();
            PublicKeyPackage pub = complete.PublicKeyPackage;

            // First phase: the new share is stored as pending (a new key or member: a pending key; a holder: a version
            // above the current one). Nothing changes what this node signs with until the run's commit.
            KeyRecord? existing = run.Kind == DkgRunKind.KeyGeneration ? null : await state.Store.Keys.GetAsync(run.KeyId, ct).ConfigureAwait(false);
            if (existing is { State: KeyState.Destroyed })
            {
                // Rejoining a committee this node left earlier: the new version is stored above the destroyed one.
                await state.Store.Keys.AddPendingVersionAsync(run.KeyId, existing.Version, toVersion, pub.VerificationKey, material, ct).ConfigureAwait(false);
            }
            else if (existing is null)
            {
                await state.Store.Keys.CreateAsync(
                    new NewKey(run.KeyId, run.KeyId, suite.SchemeName, pub.VerificationKey, pub.Threshold, pub.ParticipantCount)
                    { InitialVersion = toVersion, InitialState = KeyState.Pending },
                    material, ct).ConfigureAwait(false);
            }
            else if (run.Rejoining)
            {
                // A re-admitted node rejoining a key it was evicted from: the new version is stored above its stale one.
                await state.Store.Keys.AddPendingVersionAsync(run.KeyId, existing.Version, toVersion, pub.VerificationKey, material, ct).ConfigureAwait(false);
            }
            else
            {
                await state.Store.Keys.AddPendingVersionAsync(run.KeyId, run.Version, toVersion, pub.VerificationKey, material, ct).ConfigureAwait(false);
            }

            await state.Store.Rotations.TransitionAsync(runId, RotationState.Started, RotationState.Prepared, pub.ToBytes(), cancellationToken: ct).ConfigureAwait(false);
            await state.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", "frost." + run.Kind.ToString().ToLowerInvariant() + ".prepared", run.KeyId,
                SHA256.HashData(ctx.Request.Payload.Span), "allow", $"run {runId} version {toVersion} pending"), ct).ConfigureAwait(false);
            byte[] payload = new PayloadWriter().U32((uint)toVersion).Bytes(pub.ToBytes()).ToArray();
            return [new OutgoingMessage(FrostMessages.DkgDone, 5, [0], payload)];
        }
        finally
        {
            pending.Dispose();
        }
    }

    /// <summary>The finish step's answer when this receiver has complaints: count (u32), then each encoded complaint.</summary>
    private static OutgoingMessage ComplaintMessage(IReadOnlyList<byte[]> complaints)
    {
        var w = new PayloadWriter().U32((uint)complaints.Count);
        foreach (byte[] c in complaints)
        {
            w.Bytes(c);
        }

        return new OutgoingMessage(FrostMessages.DkgComplaint, 4, [0], w.ToArray());
    }

    private RunState Get(byte[] sessionId) => _runs.Get(sessionId);

    private void Forget(byte[] sessionId) => _runs.Drop(SessionTable<RunState>.RunId(sessionId));

    private void Sweep() => _runs.Sweep();

    private static Identifier[] Ids(FrostCiphersuite suite, uint[] nodes) => [.. nodes.Select(n => Identifier.FromInt(suite, (int)n))];


    private sealed class RunState(DkgRunKind kind, string keyId, DkgSession session, int version, bool receives, uint[] participants) : IDisposable
    {
        public DkgRunKind Kind { get; } = kind;

        public string KeyId { get; } = keyId;

        public DkgSession Session { get; } = session;

        public int Version { get; } = version;

        public bool Receives { get; } = receives;

        /// <summary>The other dealers and receivers: each must announce one run agreement key.</summary>
        public uint[] Participants { get; } = participants;

        /// <summary>This node's run agreement key; erased once its shares are sealed (a dealer) and opened (a receiver).</summary>
        public RunAgreementKey? Agreement;

        /// <summary>The other participants' run agreement keys, verified in the reveal step.</summary>
        public IReadOnlyDictionary<uint, byte[]>? PeerKeys;

        public byte[] PeerKey(uint node) =>
            PeerKeys is null ? throw new ProtocolException("the run agreement keys were not exchanged for this session")
            : PeerKeys.TryGetValue(node, out byte[]? k) ? k : throw new ProtocolException($"node {node} has no run agreement key in this session", node);

        public void EraseAgreementKey() => Interlocked.Exchange(ref Agreement, null)?.Dispose();

        public DkgCommitSecret? Commit;

        public DkgRound1Secret? Round1;

        public DkgRound2Secret? Round2;

        public DkgPendingKey? Pending;

        /// <summary>The protocol that goes on after this DKG (DKLs23), or null for a FROST key.</summary>
        public IDkgFollowUp? FollowUp;

        /// <summary>This node rejoins, as a new member, a key whose older version it still holds (re-admitted after an eviction).</summary>
        public bool Rejoining { get; init; }

        /// <summary>Rounds are still being computed (commit, round-one, round-two or pending state is held).</summary>
        public bool InProgress => Commit is not null || Round1 is not null || Round2 is not null || Pending is not null;

        public void Dispose()
        {
            EraseAgreementKey();
            Commit?.Dispose();
            Round1?.Dispose();
            Round2?.Dispose();
            Pending?.Dispose();
        }
    }
}
