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
}
