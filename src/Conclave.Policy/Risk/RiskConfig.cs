using Conclave.Policy.Documents;

namespace Conclave.Policy.Risk;

/// <summary>A threshold at or above which a trigger demands a level.</summary>
public sealed record LevelThreshold(RiskLevel Level, double AtLeast);

/// <summary>
/// How Conclave computes its own risk level (issue 16 "Risk levels"): realised-volatility thresholds over a window of
/// price samples, the age at which a price input counts as stale, thresholds on the number of threat events (denied or
/// badly signed requests) in a window, the level culprit nodes demand, the cool-down before a level may fall, and the
/// approver quorum that must agree to leave lockdown.
/// </summary>
public sealed record RiskConfig
{
    public long VolatilityWindowSeconds { get; init; } = 3600;

    /// <summary>Realised volatility (square root of the sum of squared log returns in the window) thresholds.</summary>
    public IReadOnlyList<LevelThreshold> Volatility { get; init; } = [new(RiskLevel.Elevated, 0.05), new(RiskLevel.Stressed, 0.10), new(RiskLevel.Lockdown, 0.25)];

    public long StalePriceSeconds { get; init; } = 300;

    /// <summary>
    /// Whether a price source whose latest sample is from <paramref name="latestAt"/> is stale at <paramref name="now"/>
    /// (older than <see cref="StalePriceSeconds"/>): it raises the level (<see cref="RiskTriggers"/>), and its price values
    /// no USD limit.
    /// </summary>
    public bool IsStale(DateTimeOffset latestAt, DateTimeOffset now) => now - latestAt > TimeSpan.FromSeconds(StalePriceSeconds);

    public RiskLevel StalePriceLevel { get; init; } = RiskLevel.Elevated;

    public long ThreatWindowSeconds { get; init; } = 300;

    /// <summary>Threat event counts in the window (thresholds compared as at-least).</summary>
    public IReadOnlyList<LevelThreshold> Threat { get; init; } = [new(RiskLevel.Elevated, 20), new(RiskLevel.Stressed, 100)];

    public RiskLevel CulpritLevel { get; init; } = RiskLevel.Elevated;

    public TimeSpan CoolDown { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Who must approve leaving lockdown, and how many of them.</summary>
    public ApprovalGroup LockdownExit { get; init; } = new("risk", [], 1);
}
