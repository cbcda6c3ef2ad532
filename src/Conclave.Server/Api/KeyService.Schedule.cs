using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Storage.Keys;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Api;

public sealed partial class KeyService
{
    /// <summary>
    /// Refreshes a FROST or ecdsa-dkls23 key and waits for the run to finish (the continuous rotator's step); returns the
    /// key's new version. The run is started under the server's lifetime like any refresh, so cancelling
    /// <paramref name="ct"/> stops the waiting, not the run.
    /// </summary>
    public async Task<int> RefreshToEndAsync(KeyRecord key, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Scheme == DklsScheme.Name)
        {
            _ = await DklsKeyAsync(key, ct).ConfigureAwait(false);
            RotationPlan plan = _dkls.PlanRefresh(key.Id);
            (_, Task<DklsKeyInfo> dklsRun) = StartRun(plan, session => _dkls.RotateAsync(plan, Lifetime, session));
            return (await dklsRun.WaitAsync(ct).ConfigureAwait(false)).Version;
        }

        if (!FrostCiphersuite.TryGet(key.Scheme, out FrostCiphersuite? suite))
        {
            throw new ApiException(ProblemTypes.NotThreshold, $"refresh applies to threshold keys; {key.Name} is a single {key.Scheme} key");
        }

        _ = await FrostKeyAsync(key, suite, ct).ConfigureAwait(false);
        (_, Task<FrostKeyInfo> run) = StartRun(_frost.PlanRefresh(key.Id));
        return (await run.WaitAsync(ct).ConfigureAwait(false)).Version;
    }
}
