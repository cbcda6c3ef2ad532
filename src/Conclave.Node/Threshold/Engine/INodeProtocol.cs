using Conclave.Node.Protocol;

namespace Conclave.Node.Threshold.Engine;

/// <summary>The public summary of a prepared key that a key row records: verification key, threshold, number of holders.</summary>
public sealed record PreparedKey(byte[] VerificationKey, int Threshold, int ParticipantCount)
{
    /// <summary>The node ids holding shares of the prepared version (the server's key row records them); null when not stated.</summary>
    public IReadOnlyList<uint>? Holders { get; init; }
}

/// <summary>
/// The node half of a threshold protocol plugged into the engine (docs/ARCHITECTURE.md "Threshold engine"). The protocol
/// brings the handlers of its own message kinds (key generation rounds, pre-computation, the online signing round,
/// repair); the engine brings the rotation steps every protocol shares (<see cref="RotationMessages"/>: commit, retire,
/// abort, status), key versions (<see cref="KeyVersions{TShare}"/>), pools with the durable consume-before-release ledger
/// (<see cref="MaterialPool{TScope, TItem}"/>) and session bookkeeping (<see cref="SessionTable{TState}"/>).
/// </summary>
public interface INodeProtocol
{
    /// <summary>The protocol's name ("FROST").</summary>
    string Name { get; }

    /// <summary>True when keys of <paramref name="scheme"/> are this protocol's.</summary>
    bool Handles(string scheme);

    /// <summary>The handlers of the protocol's own message kinds.</summary>
    IReadOnlyList<IProtocolHandler> Handlers { get; }

    /// <summary>The public summary of a run's prepared result (what the protocol's rounds recorded as the run's Result).</summary>
    PreparedKey DescribePrepared(string scheme, byte[] result);

    /// <summary>Forgets the opened shares and pooled material of a key whose versions a rotation step changed.</summary>
    void Evict(string keyId);

    /// <summary>
    /// A rotation run committed a new version of the key on this node; <paramref name="previousVersion"/> still signs
    /// until the run retires it. By default everything of the key is forgotten, as by <see cref="Evict"/>; a protocol
    /// may keep what still serves the previous version (FROST keeps its pooled nonces, so a signature that a coordinator
    /// began on the previous version while the run committed is not refused for a nonce it just dropped).
    /// </summary>
    void Committed(string keyId, int previousVersion) => Evict(keyId);

    /// <summary>Forgets the in-memory round state of a run (committed, retired or aborted).</summary>
    void DropRun(string runId);
}
