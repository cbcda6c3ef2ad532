using Conclave.Policy.Risk;

namespace Conclave.Policy.Evaluation;

/// <summary>
/// Everything a decision depends on besides the request, the policy and the counters: the risk level, the time, and
/// the fresh USD prices by price source (a stale price must be left out by the caller; a USD limit with no price
/// denies).
/// </summary>
public sealed record EvaluationContext(RiskLevel Level, DateTimeOffset Now, IReadOnlyDictionary<string, decimal>? UsdPrices = null);
