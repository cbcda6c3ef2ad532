using Conclave.Server.Coordinator;
using Conclave.Storage.Keys;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Api;

public sealed partial class KeyService
{
    /// <summary>
    /// Refreshes a FROST key and waits for the run to finish (the continuous rotator's step): the run is started under
    /// the server's lifetime like any refresh, so cancelling <paramref name="ct"/> stops the waiting, not the run.
    /// </summary>
    public async Task<FrostKeyInfo> RefreshToEndAsync(KeyRecord key, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!FrostCiphersuite.TryGet(key.Scheme, out FrostCiphersuite? suite))
        {
            throw new ApiException(ProblemTypes.NotThreshold, $"refresh applies to threshold keys; {key.Name} is a single {key.Scheme} key");
        }

        _ = await FrostKeyAsync(key, suite, ct).ConfigureAwait(false);
        (_, Task<FrostKeyInfo> run) = StartRun(_frost.PlanRefresh(key.Id));
        return await run.WaitAsync(ct).ConfigureAwait(false);
    }
}
