using System.Globalization;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Threshold.Dkls23;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// DKLs23 presignatures on a node (ePrint 2023/765 §3: rounds one to three of Protocol 3.6 do not depend on the message).
/// Presigning is the three signing rounds of <see cref="DklsSignHandlers"/> with an empty digest in round three: the node
/// keeps the <see cref="DklsPresignature"/> in memory only, in the node's <see cref="MaterialPool{TScope, TItem}"/>, whose
/// <see cref="MaterialPool{TScope, TItem}.IssueAsync"/> records the presignature's id consumed in the durable nonce ledger
/// before R leaves the node (consume-before-release, DESIGN.md safety rule 1). The pool scope binds the key version, the
/// signer set and the derivation path, which is fixed in round one before any R_j is revealed (Groth and Shoup, ePrint
/// 2021/1330): a presignature is never re-targeted to another child, signer set or key version. The online step
/// (<see cref="PresignSign"/>, one round, 1..256 items per step: <see cref="DklsPresignBatch"/>) takes each item's
/// presignature out of the pool (so it serves one request at most; after a restart the pool is empty and every id is
/// refused) and answers per item R and the share (u_i, w_i) of <see cref="DklsSigner.Sign"/>, or that item's refusal.
/// </summary>
public sealed class DklsPresignHandlers(DklsNodeState state) : IProtocolHandler
{
    /// <summary>The online round: sign digests with pooled presignatures, 1..256 per step (<see cref="DklsPresignBatch"/>).</summary>
    public const string PresignSign = "dkls.presign.sign";

    /// <summary>The node's answer to an online step: per item R and its share, or a refusal (<see cref="DklsPresignBatch"/>).</summary>
    public const string Shares = "dkls.presign.shares";

    public IReadOnlyCollection<string> Kinds { get; } = [PresignSign];

    /// <summary>The online round takes no relayed message; a stray one relayed to it is dropped, not the step (docs/DKLS23.md "Stray relayed messages").</summary>
    public StrayRelayed StrayRelayed => StrayRelayed.Drop;

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return await DklsTransport.Refuse<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            PresignSign => await SignAsync(context, cancellationToken).ConfigureAwait(false),
            _ => throw new ProtocolException($"unknown kind {context.Request.Kind}"),
        }, () => { }).ConfigureAwait(false);
    }

    /// <summary>The pool scope of a presignature: key version, signer set (sorted) and derivation path.</summary>
    public static string Scope(int version, IEnumerable<uint> signers, IEnumerable<uint> path) =>
        string.Create(CultureInfo.InvariantCulture, $"v{version}|{string.Join(',', signers.Order())}|m/{string.Join('/', path)}");

    /// <summary>
    /// Pools a presignature just made by round three (consumes <paramref name="presignature"/>): its id is durable in the
    /// ledger as consumed before this returns the answer R ‖ id.
    /// </summary>
    internal static async Task<IReadOnlyList<OutgoingMessage>> PoolAsync(DklsNodeState state, string keyId, int version, uint[] signers, uint[] path,
        DklsPresignature presignature, CancellationToken ct)
    {
        byte[] r = presignature.Context.NoncePoint.ToArray();
        IReadOnlyList<byte[]> ids = await state.Presignatures.IssueAsync(keyId, Scope(version, signers, path), [presignature], ct).ConfigureAwait(false);
        byte[] payload = new PayloadWriter().Bytes(r).Bytes(ids[0]).ToArray();
        return [new OutgoingMessage(DklsMessages.Share, 3, [0], payload)];
    }

    /// <summary>
    /// An online step of 1..256 items (<see cref="DklsPresignBatch"/>): each item is signed or refused on its own. The
    /// items' audit records are appended as each item starts, so their commits group into one fsync while the shares are
    /// computed; no share is returned before its own record is durable.
    /// </summary>
    private async Task<IReadOnlyList<OutgoingMessage>> SignAsync(StepContext ctx, CancellationToken ct)
    {
        IReadOnlyList<DklsPresignItem> items = DklsPresignBatch.DecodeRequest(ctx.Request.Payload.Span);
        var pending = new Task<DklsPresignOutcome>[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            pending[i] = OutcomeAsync(items[i], ct);
        }

        var outcomes = new DklsPresignOutcome[items.Count];
        for (int i = 0; i < pending.Length; i++)
        {
            outcomes[i] = await pending[i].ConfigureAwait(false);
        }

        return [new OutgoingMessage(Shares, ctx.Request.Round, [0], DklsPresignBatch.EncodeReply(outcomes))];
    }

    /// <summary>One item's outcome: R and its share, or the refusal its failure maps to (as a whole step's would, <see cref="DklsTransport.Refuse{T}"/>).</summary>
    private async Task<DklsPresignOutcome> OutcomeAsync(DklsPresignItem item, CancellationToken ct)
    {
        try
        {
            return await DklsTransport.Refuse(() => SignItemAsync(item, ct), () => { }).ConfigureAwait(false);
        }
        catch (ProtocolException e)
        {
            return DklsPresignOutcome.Refused(e.Message, e.Culprit);
        }
    }

    /// <summary>DKLs23 Protocol 3.6 online step (ePrint 2023/765 §3): w_i = e·φ_i + r_x·v_i with the pooled presignature, answered with u_i.</summary>
    private async ValueTask<DklsPresignOutcome> SignItemAsync(DklsPresignItem item, CancellationToken ct)
    {
        if (!item.Signers.Contains(state.NodeId))
        {
            throw new ProtocolException($"the signer set must include node {state.NodeId}");
        }

        // A pending or superseded version never signs (KeyVersions); its presignatures were evicted with it.
        using KeyVersions<DklsKeyShare>.ShareLease lease = await state.Shares.LeaseAtVersionAsync(item.KeyId, item.KeyVersion, ct).ConfigureAwait(false);
        DklsKeyShare key = lease.Share;
        DklsPresignature presignature = state.Presignatures.Take(item.KeyId, Scope(item.KeyVersion, item.Signers, item.Path), item.PresignatureId)
            ?? throw new ProtocolException($"presignature {Convert.ToHexStringLower(item.PresignatureId)} of key {item.KeyId} is unknown or already used, or was made for another key version, signer set or derivation path (a restart discards every pooled presignature)");
        presignature = state.Faults?.OnlinePresignature is { } swap ? swap(presignature) : presignature; // testing only (DklsFaults)

        // The node's own durable record of the share, before the share leaves (as for the three-round signature). The
        // online round's session is the one the server's "dkls.sign" entry names (conclave audit reconcile). The record
        // names only public values known before the share is computed, so its commit runs while the share is computed
        // (as FROST's sign step); the share is returned only once it is durable. If computing the share fails, the record
        // stays (a share was asked for under that presignature, now consumed) and nothing leaves.
        Task recorded = SignAuditRecords.RecordDklsShareAsync(state.Store, state.NodeId, item.KeyId, item.KeyVersion, item.Digest, item.SessionId, item.PresignatureId, ct);
        return await RecordedRelease.Compute(recorded, () =>
        {
            using (presignature)
            {
                DklsSignatureShare share = DklsSigner.Sign(presignature, key, item.Digest, item.Path);
                return DklsPresignOutcome.Signed(presignature.Context.NoncePoint.ToArray(), state.EditShare(share.ToBytes()));
            }
        }).ConfigureAwait(false);
    }
}
