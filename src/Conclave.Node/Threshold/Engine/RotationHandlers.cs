using System.Security.Cryptography;
using Conclave.Node.Protocol;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// The second phase of a rotation run on a node (docs/ROTATION.md), bound to the run by its session id: commit (the
/// pending version becomes current), retire (the old version is erased, only with a signed commit from every receiver
/// of the same run), abort (the pending version is discarded, never a committed one) and status (what the node holds,
/// for recovery). Every step is idempotent, so a coordinator that crashed or lost a reply simply sends it again.
/// </summary>
public sealed class RotationHandlers(NodeEngine state) : IProtocolHandler
{
    public IReadOnlyCollection<string> Kinds { get; } =
        [RotationMessages.Commit, RotationMessages.Retire, RotationMessages.Abort, RotationMessages.Status];

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return await HandlerSupport.RefuseOnFailure<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            RotationMessages.Commit => await CommitAsync(context, cancellationToken).ConfigureAwait(false),
            RotationMessages.Retire => await RetireAsync(context, cancellationToken).ConfigureAwait(false),
            RotationMessages.Abort => await AbortAsync(context, cancellationToken).ConfigureAwait(false),
            RotationMessages.Status => await StatusAsync(context, cancellationToken).ConfigureAwait(false),
            _ => throw new ProtocolException($"unknown kind {context.Request.Kind}"),
        }).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<OutgoingMessage>> CommitAsync(StepContext ctx, CancellationToken ct)
    {
        (RotationRun run, NodeRunParameters p) = await RunForRequestAsync(ctx, ct).ConfigureAwait(false);
        if (!p.Receivers.Contains(state.NodeId))
        {
            throw new ProtocolException($"node {state.NodeId} receives nothing in run {run.RunId}");
        }

        switch (run.State)
        {
            case RotationState.Prepared:
                PreparedKey package = Package(run, p);
                await EraseStaleShareOfARejoiningNodeAsync(run, p, ct).ConfigureAwait(false);
                await state.Store.Keys.CommitPendingVersionAsync(
                    new KeyRotation(run.KeyId, run.FromVersion, run.ToVersion, package.VerificationKey, package.Threshold, package.ParticipantCount), ct).ConfigureAwait(false);
                run = await state.Store.Rotations.TransitionAsync(run.RunId, RotationState.Prepared, RotationState.Committed, cancellationToken: ct).ConfigureAwait(false);
                state.Committed(run.KeyId, run.FromVersion);
                state.DropRun(run.RunId);
                await AuditAsync(ctx, "rotation.commit", run, $"version {run.ToVersion} current", ct).ConfigureAwait(false);
                break;
            case RotationState.Committed:
            case RotationState.Retired:
                break; // a repeated commit: answer again with fresh signed evidence
            default:
                throw new ProtocolException($"run {run.RunId} is {run.State.ToString().ToLowerInvariant()} on node {state.NodeId}; it cannot be committed");
        }

        return [new OutgoingMessage(RotationMessages.Committed, 6, [], CommittedPayload(run))];
    }

    /// <summary>
    /// A node re-admitted after an eviction that joins, as a new member of a reshare, a key whose older version it still
    /// holds (docs/ROTATION.md "Re-admitting"): at its commit of the new version, and not before, the stale share is erased
    /// and the key marked destroyed, so the commit takes the new version as a member rejoining a committee it left. The
    /// stale share could never sign again anyway (every other holder erased that version when the key moved away).
    /// </summary>
    private async Task EraseStaleShareOfARejoiningNodeAsync(RotationRun run, NodeRunParameters p, CancellationToken ct)
    {
        if (p.Kind != DkgRunKind.Reshare || p.Dealers.Contains(state.NodeId) || p.OldHolders.Contains(state.NodeId))
        {
            return;
        }

        KeyRecord? key = await state.Store.Keys.GetAsync(run.KeyId, ct).ConfigureAwait(false);
        if (key is not { State: KeyState.Active or KeyState.Disabled } || key.Version >= run.FromVersion)
        {
            return;
        }

        await state.Store.Keys.DestroyMaterialAsync(run.KeyId, key.Version, ct).ConfigureAwait(false);
        await state.Store.Keys.SetStateAsync(run.KeyId, KeyState.Destroyed, ct).ConfigureAwait(false);
        state.Evict(run.KeyId);
        await state.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", "rotation.rejoin", run.KeyId, null, "allow",
            $"run {run.RunId}: stale version {key.Version} erased, rejoining at version {run.ToVersion}"), ct).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<OutgoingMessage>> RetireAsync(StepContext ctx, CancellationToken ct)
    {
        (RotationRun run, NodeRunParameters p) = await RunForRequestAsync(ctx, ct).ConfigureAwait(false);
        bool receiver = p.Receivers.Contains(state.NodeId);
        bool leaving = !receiver && (p.Dealers.Contains(state.NodeId) || p.OldHolders.Contains(state.NodeId));
        if (run.State == RotationState.Retired)
        {
            return [new OutgoingMessage(RotationMessages.Retired, 7, [0], [])];
        }

        if (!(receiver ? run.State == RotationState.Committed : leaving && run.State is RotationState.Prepared or RotationState.Started))
        {
            throw new ProtocolException($"run {run.RunId} is {run.State.ToString().ToLowerInvariant()} on node {state.NodeId}; it cannot be retired yet");
        }

        // Erasing is the one step that cannot be undone: it needs a signed commit of this run from every receiver (the
        // envelopes were verified against the manifest by the service; here their content must match this node's
        // record of the run), so neither a coordinator nor a lost reply can make a node erase before the new shares
        // are current everywhere.
        // An old holder that did not deal never saw the new package: it takes the receivers' word, which must be the
        // same from every receiver.
        byte[] expected = run.Result is null && ctx.Relayed.Count > 0 ? ctx.Relayed[0].Payload.ToByteArray() : CommittedPayload(run);
        if (run.Result is null)
        {
            var check = new PayloadReader(expected);
            if (check.String("keyId") != run.KeyId || check.U32("version") != (uint)run.ToVersion)
            {
                throw new ProtocolException($"the commits relayed for run {run.RunId} name another key or version");
            }
        }

        var committed = new HashSet<uint>();
        foreach (Rpc.Envelope e in ctx.Relayed)
        {
            if (e.Kind != RotationMessages.Committed || !e.Payload.Span.SequenceEqual(expected))
            {
                throw new ProtocolException($"retire expects node {e.Sender}'s commit of run {run.RunId}", e.Sender);
            }

            committed.Add(e.Sender);
        }

        if (receiver)
        {
            committed.Add(state.NodeId);
        }

        uint[] missing = [.. p.Receivers.Where(r => !committed.Contains(r))];
        if (missing.Length > 0)
        {
            throw new ProtocolException($"retire of run {run.RunId} lacks the commit of node(s) {string.Join(",", missing)}");
        }

        // A repair rebuilt a lost share at the key's current version: there is no older version to erase.
        if (run.FromVersion > 0 && p.Kind != DkgRunKind.Repair)
        {
            await state.Store.Keys.DestroyMaterialAsync(run.KeyId, run.FromVersion, ct).ConfigureAwait(false);
        }

        if (leaving)
        {
            // Resharing moved the key away from this node: nothing of it may remain usable here.
            await state.Store.Keys.SetStateAsync(run.KeyId, KeyState.Destroyed, ct).ConfigureAwait(false);
        }

        await state.Store.Rotations.TransitionAsync(run.RunId, run.State, RotationState.Retired, cancellationToken: ct).ConfigureAwait(false);
        state.Evict(run.KeyId);
        state.DropRun(run.RunId);
        await AuditAsync(ctx, "rotation.retire", run, leaving ? $"version {run.FromVersion} erased, key left this node" : $"version {run.FromVersion} erased", ct).ConfigureAwait(false);
        return [new OutgoingMessage(RotationMessages.Retired, 7, [0], [])];
    }

    private async Task<IReadOnlyList<OutgoingMessage>> AbortAsync(StepContext ctx, CancellationToken ct)
    {
        string runId = Convert.ToHexStringLower(ctx.SessionId);
        state.DropRun(runId);
        RotationRun? run = await state.Store.Rotations.GetAsync(runId, ct).ConfigureAwait(false);
        ReadKeyId(ctx, run);
        if (run is not null && run.State is RotationState.Started or RotationState.Prepared)
        {
            await state.Store.Keys.DiscardPendingVersionAsync(run.KeyId, run.ToVersion, ct).ConfigureAwait(false);
            await state.Store.Rotations.TransitionAsync(runId, run.State, RotationState.Aborted, error: "aborted by the coordinator", cancellationToken: ct).ConfigureAwait(false);
            await AuditAsync(ctx, "rotation.abort", run, $"pending version {run.ToVersion} discarded", ct).ConfigureAwait(false);
        }
        else if (run is not null && run.State is RotationState.Committed or RotationState.Retired)
        {
            throw new ProtocolException($"run {runId} is {run.State.ToString().ToLowerInvariant()} on node {state.NodeId}; a committed run is never aborted");
        }

        return [new OutgoingMessage(RotationMessages.Aborted, 8, [0], [])];
    }

    private async Task<IReadOnlyList<OutgoingMessage>> StatusAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        r.End();
        KeyRecord? key = await state.Store.Keys.GetAsync(keyId, ct).ConfigureAwait(false);
        RotationRun? active = await state.Store.Rotations.GetActiveAsync(keyId, ct).ConfigureAwait(false);
        byte[] payload = new PayloadWriter()
            .U32((uint)(key?.Version ?? 0))
            .String(key?.State.ToString() ?? "Absent")
            .String(active?.RunId ?? "")
            .String(active?.State.ToString() ?? "")
            .ToArray();
        return [new OutgoingMessage(RotationMessages.StatusReply, 9, [0], payload)];
    }

    /// <summary>The run this request's session names, recorded on this node, and the key id the request names must match it.</summary>
    private async Task<(RotationRun Run, NodeRunParameters Parameters)> RunForRequestAsync(StepContext ctx, CancellationToken ct)
    {
        string runId = Convert.ToHexStringLower(ctx.SessionId);
        RotationRun run = await state.Store.Rotations.GetAsync(runId, ct).ConfigureAwait(false)
            ?? throw new ProtocolException($"node {state.NodeId} took no part in run {runId}");
        ReadKeyId(ctx, run);
        return (run, NodeRunParameters.FromBytes(run.Parameters));
    }

    private static void ReadKeyId(StepContext ctx, RotationRun? run)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        r.End();
        if (run is not null && run.KeyId != keyId)
        {
            throw new ProtocolException($"run {run.RunId} is of another key");
        }
    }

    /// <summary>The run's prepared result as the run's protocol reads it.</summary>
    private PreparedKey Package(RotationRun run, NodeRunParameters p)
    {
        if (run.Result is null)
        {
            throw new ProtocolException($"run {run.RunId} has no prepared key package");
        }

        return state.For(p.Scheme).DescribePrepared(p.Scheme, run.Result);
    }

    /// <summary>What a receiver signs to say it committed: key id, new version and the hash of the agreed public key package.</summary>
    private static byte[] CommittedPayload(RotationRun run) =>
        new PayloadWriter().String(run.KeyId).U32((uint)run.ToVersion).Bytes(SHA256.HashData(run.Result ?? [])).ToArray();

    private Task AuditAsync(StepContext ctx, string action, RotationRun run, string result, CancellationToken ct) =>
        state.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", action, run.KeyId, SHA256.HashData(ctx.Request.Payload.Span), "allow", $"run {run.RunId}: {result}"), ct);
}
