using Conclave.Node.Rpc;

namespace Conclave.Node.Protocol;

/// <summary>A message a handler wants to send; the service signs and stamps it.</summary>
public sealed record OutgoingMessage(string Kind, uint Round, IReadOnlyList<uint> Recipients, byte[] Payload);

/// <summary>What a handler sees of one step: the coordinator's request and the peers' messages, all already verified.</summary>
public sealed class StepContext
{
    public required Envelope Request { get; init; }

    public required IReadOnlyList<Envelope> Relayed { get; init; }

    public required NodeIdentity Identity { get; init; }

    /// <summary>
    /// How many relayed messages the service dropped before this step (handlers with <see cref="StrayRelayed.Drop"/>
    /// only): of another session, for another recipient, replayed or outside the validity window. For refusal texts.
    /// </summary>
    public int DroppedRelayed { get; init; }

    public byte[] SessionId => Request.SessionId.ToByteArray();
}

/// <summary>
/// What the node service does with a relayed message, signed by a known, trusted peer or claiming to be, that is of
/// another session, addressed to other nodes, a copy of one it took before (the replay guard) or outside the validity
/// window: refuse the whole step naming nobody, or drop the message (logged without its payload, counted in
/// <see cref="StepContext.DroppedRelayed"/>) and run the step on the others.
/// </summary>
public enum StrayRelayed
{
    Refuse,
    Drop,
}

/// <summary>Runs the protocol steps of some message kinds on a node.</summary>
public interface IProtocolHandler
{
    IReadOnlyCollection<string> Kinds { get; }

    /// <summary>What the service does with a stray relayed message for these kinds (<see cref="StrayRelayed"/>); refuse unless a handler says otherwise.</summary>
    StrayRelayed StrayRelayed => StrayRelayed.Refuse;

    ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken);
}

/// <summary>A protocol step was refused. <see cref="Culprit"/> names the node at fault when one is known.</summary>
public sealed class ProtocolException : Exception
{
    public ProtocolException() { }

    public ProtocolException(string message) : base(message) { }

    public ProtocolException(string message, Exception innerException) : base(message, innerException) { }

    public ProtocolException(string message, uint? culprit) : base(message) => Culprit = culprit;

    public uint? Culprit { get; }
}

/// <summary>
/// Liveness and identity proof: the coordinator sends a 32-byte challenge; the node answers with an envelope
/// signed by its identity key carrying the same challenge. Used for readiness checks.
/// </summary>
public sealed class AttestHandler : IProtocolHandler
{
    public const string RequestKind = "node.attest";
    public const string ReplyKind = "node.attestation";

    public IReadOnlyCollection<string> Kinds { get; } = [RequestKind];

    public ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Request.Payload.Length != 32)
        {
            throw new ProtocolException("attestation challenge must be 32 bytes");
        }

        IReadOnlyList<OutgoingMessage> reply = [new OutgoingMessage(ReplyKind, context.Request.Round, [0], context.Request.Payload.ToByteArray())];
        return ValueTask.FromResult(reply);
    }
}
