using Conclave.Policy.Risk;

namespace Conclave.Server.Api;

/// <summary>
/// The venue's current risk level, as policy enforcement reads it for every decision. The seam between the risk
/// subsystem (manual settings, computed triggers, the ratchet) and the policy enforcement on signing routes: a level
/// change applies to the next request without a restart. The server's is <see cref="Conclave.Server.Risk.RiskService"/>, registered
/// in ServerHost.
/// </summary>
public interface IRiskLevelSource
{
    /// <summary>The level in force now, why, and since when.</summary>
    RiskState Current { get; }

    /// <summary>
    /// The USD price of each price source whose latest sample is fresh at <paramref name="now"/> (not older than the
    /// stale-price threshold): what a USD limit multiplies a request's native amount by (docs/POLICY.md "Documents").
    /// A source without a fresh price is absent, so a USD limit on it denies.
    /// </summary>
    IReadOnlyDictionary<string, decimal> FreshUsdPrices(DateTimeOffset now);
}
