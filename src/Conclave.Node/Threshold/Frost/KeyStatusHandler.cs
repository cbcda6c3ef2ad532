using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage.Keys;
using Conclave.Threshold.Frost;

namespace Conclave.Node.Frost;

/// <summary>
/// <c>key.status</c>: what this node holds of one key, for the server's consistency check after a restore
/// (docs/OPERATIONS.md "Restoring the server"): the current (committed) version, the key's state and, for an active key,
/// the public key package of that version (the one inside the node's sealed key package). Public data only; the reply
/// is signed by the node like every other message, so the server knows which node said what.
/// </summary>
public sealed class KeyStatusHandler(FrostNodeState state) : IProtocolHandler
{
    public const string RequestKind = "key.status";
    public const string ReplyKind = "key.status-reply";

    public IReadOnlyCollection<string> Kinds { get; } = [RequestKind];

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return await HandlerSupport.RefuseOnFailure<IReadOnlyList<OutgoingMessage>>(async () =>
        {
            var r = new PayloadReader(context.Request.Payload.Span);
            string keyId = r.String("keyId");
            r.End();
            KeyRecord? key = await state.Store.Keys.GetAsync(keyId, cancellationToken).ConfigureAwait(false);
            byte[] package = [];
            int version = key?.Version ?? 0;
            if (key is { State: KeyState.Active } && FrostCiphersuite.TryGet(key.Scheme, out _))
            {
                (KeyPackage k, int v) = await state.GetKeyWithVersionAsync(keyId, cancellationToken).ConfigureAwait(false);
                package = k.PublicKeyPackage.ToBytes();
                version = v;
            }

            byte[] payload = new PayloadWriter()
                .String(keyId)
                .U32((uint)version)
                .String(key?.State.ToString() ?? "Absent")
                .Bytes(package)
                .ToArray();
            return [new OutgoingMessage(ReplyKind, context.Request.Round, [0], payload)];
        }).ConfigureAwait(false);
    }
}
