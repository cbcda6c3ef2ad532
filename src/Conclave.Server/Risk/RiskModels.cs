namespace Conclave.Server.Risk;

/// <summary>PUT /v1/risk: the manual level (a floor) and why.</summary>
public sealed record SetRiskRequest(string? Level = null, string? Reason = null);

/// <summary>POST /v1/risk/prices: price samples, 1 to 1000.</summary>
public sealed record RiskPricesRequest(IReadOnlyList<RiskPriceSample?>? Samples = null);

/// <summary>One price sample: the price source (instrument), a positive price, and when (default: when received).</summary>
public sealed record RiskPriceSample(string? Source = null, decimal? Price = null, DateTimeOffset? At = null);

/// <summary>GET /v1/risk: the level, why, since when, when it may fall, what it was computed from, the lockdown-exit votes.</summary>
public sealed record RiskResponse(
    string Level,
    DateTimeOffset Since,
    IReadOnlyList<string> Reasons,
    DateTimeOffset LastDemandedAt,
    DateTimeOffset? CanFallAfter,
    long CoolDownSeconds,
    RiskInputsResponse Inputs,
    LockdownExitResponse LockdownExit);

public sealed record RiskInputsResponse(RiskManualResponse Manual, IReadOnlyList<PriceSourceResponse> Prices, int ThreatEvents, int CulpritNodes, string Demanded,
    IReadOnlyList<string> DemandedReasons);

public sealed record RiskManualResponse(string Level, string? By, string? Reason, DateTimeOffset? At);

public sealed record PriceSourceResponse(string Source, double? Volatility, int Samples, DateTimeOffset? LatestAt, bool Stale);

public sealed record LockdownExitResponse(IReadOnlyList<string> Votes, int Needed, IReadOnlyList<string> Approvers);

/// <summary>POST /v1/risk/lockdown/exit: what the vote did (left, recorded, waiting-cool-down, still-demanded) and the level after it.</summary>
public sealed record LockdownVoteResponse(string Outcome, RiskResponse Risk);
