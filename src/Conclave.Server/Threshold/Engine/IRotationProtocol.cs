using Conclave.Node.Threshold.Engine;
using Conclave.Server.Coordinator;

namespace Conclave.Server.Threshold.Engine;

/// <summary>
/// What a threshold protocol gives the <see cref="RotationEngine{TKey}"/> so that key generation, refresh and reshare run
/// as crash-safe rotation runs (docs/ROTATION.md): the protocol-specific rounds up to the decision, and how to read the
/// public result they agree on. Everything after the decision (commit on every receiver, the store's key row, retire
/// with every receiver's signed commit, abort, recovery) is the engine's and the same for every protocol.
/// </summary>
public interface IRotationProtocol<TKey>
    where TKey : class, IThresholdKey
{
    /// <summary>True when <paramref name="scheme"/> is one of this protocol's schemes.</summary>
    bool Handles(string scheme);

    /// <summary>The newest registration of a key (null: unknown).</summary>
    TKey? Find(string keyId);

    /// <summary>
    /// Runs the protocol's rounds of <paramref name="plan"/> under the run's session id (DKG, refresh or reshare, with any
    /// pairwise setup the protocol needs) until every receiver holds its new share as pending and every party reported the
    /// same public result; returns that result's public encoding (the run's Result). Throws if anything went wrong: the
    /// engine then aborts the run. The protocol calls <see cref="RotationEngine{TKey}.FaultAsync"/> at its round
    /// boundaries so crash tests can stop it there.
    /// </summary>
    Task<byte[]> PrepareAsync(byte[] session, RotationPlan plan, CancellationToken ct);

    /// <summary>The summary of a prepared result (<see cref="PrepareAsync"/>'s bytes) for the store's key row.</summary>
    PreparedKey Describe(RotationPlan plan, byte[] result);

    /// <summary>
    /// The run is committed on every receiver: register the key at its new version (<paramref name="result"/> as
    /// <see cref="PrepareAsync"/> returned it) and drop pre-computed material pooled for the nodes the run touched.
    /// </summary>
    TKey Committed(RotationPlan plan, byte[] result);
}
