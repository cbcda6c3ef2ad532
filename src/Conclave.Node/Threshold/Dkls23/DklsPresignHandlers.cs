using System.Globalization;
using Conclave.Node.Frost;
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
/// (<see cref="PresignSign"/>, one round) takes the presignature out of the pool (so it serves one request at most; after
/// a restart the pool is empty and every id is refused) and answers R and the share (u_i, w_i) of <see cref="DklsSigner.Sign"/>.
/// </summary>
public sealed class DklsPresignHandlers(DklsNodeState state) : IProtocolHandler
{
    /// <summary>The online round: sign a digest with one pooled presignature.</summary>
    public const string PresignSign = "dkls.presign.sign";

    public IReadOnlyCollection<string> Kinds { get; } = [PresignSign];

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

    private async Task<IReadOnlyList<OutgoingMessage>> SignAsync(StepContext ctx, CancellationToken ct)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        int version = (int)r.U32("keyVersion");
        uint[] signers = r.NodeIds("signers");
        uint[] path = r.NonHardenedPath();
        byte[] id = r.Bytes("presignatureId", MaterialPool<string, DklsPresignature>.IdSizeInBytes).ToArray();
        byte[] digest = r.Bytes("digest", 32).ToArray();
        r.End();
        if (digest.Length != 32)
        {
            throw new ProtocolException("the digest must be 32 bytes");
        }

        if (!signers.Contains(state.NodeId))
        {
            throw new ProtocolException($"the signer set must include node {state.NodeId}");
        }

        // A pending or superseded version never signs (KeyVersions); its presignatures were evicted with it.
        using KeyVersions<DklsKeyShare>.ShareLease lease = await state.Shares.LeaseAtVersionAsync(keyId, version, ct).ConfigureAwait(false);
        DklsKeyShare key = lease.Share;
        DklsPresignature presignature = state.Presignatures.Take(keyId, Scope(version, signers, path), id)
            ?? throw new ProtocolException($"presignature {Convert.ToHexStringLower(id)} of key {keyId} is unknown or already used, or was made for another key version, signer set or derivation path (a restart discards every pooled presignature)");
        presignature = state.Faults?.OnlinePresignature is { } swap ? swap(presignature) : presignature; // testing only (DklsFaults)
        byte[] payload;
        using (presignature)
        {
            DklsSignatureShare share = DklsSigner.Sign(presignature, key, digest, path);
            payload = new PayloadWriter().Bytes(presignature.Context.NoncePoint).Bytes(state.EditShare(share.ToBytes())).ToArray();
        }

        // The node's own durable record of the share, before the share leaves (as for the three-round signature).
        // The online round's session is the one the server's "dkls.sign" entry names (conclave audit reconcile).
        await SignAuditRecords.RecordDklsShareAsync(state.Store, state.NodeId, keyId, version, digest, ctx.SessionId, id, ct).ConfigureAwait(false);
        return [new OutgoingMessage(DklsMessages.Share, 1, [0], payload)];
    }
}
