using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Documents;

public enum Effect
{
    Allow,
    Deny,
    RequireApproval,
}

public enum RuleMode
{
    Enforce,
    Shadow,
}

/// <summary>
/// Which requests a rule is about. Every list is a filter: an empty list matches anything, a non-empty list matches a
/// request whose value is in it (keys match by id or by any of the key's labels through <see cref="Labels"/>).
/// </summary>
public sealed record RuleMatch
{
    public IReadOnlyList<string> Principals { get; init; } = [];
    public IReadOnlyList<Role> Roles { get; init; } = [];
    public IReadOnlyList<string> Keys { get; init; } = [];
    public IReadOnlyList<string> Labels { get; init; } = [];
    public IReadOnlyList<string> Venues { get; init; } = [];
    public IReadOnlyList<long> ChainIds { get; init; } = [];
    public IReadOnlyList<OperationKind> Operations { get; init; } = [];
    public IReadOnlyList<string> Contracts { get; init; } = [];
    public IReadOnlyList<string> Selectors { get; init; } = [];
}

public enum ConditionOperator
{
    Eq,
    Ne,
    OneOf,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    InList,
    NotInList,
}

/// <summary>A condition on one argument: <c>{"arg", "op", "value" | "values" | "min"/"max"}</c>.</summary>
public sealed record Condition(string Arg, ConditionOperator Op, PolicyValue? Value, IReadOnlyList<PolicyValue> Values, decimal? Min, decimal? Max);

/// <summary>A UTC time window: days of the week and minutes from midnight; <c>from &gt; to</c> wraps past midnight.</summary>
public sealed record TimeWindow(IReadOnlyList<DayOfWeek> Days, int FromMinute, int ToMinute);

public enum LimitScope
{
    Principal,
    Shared,
}

/// <summary>A velocity limit: sum (native and/or USD) and/or count over a sliding window, per principal or shared.</summary>
public sealed record VelocityLimit(string Id, long WindowSeconds, decimal? SumNative, decimal? SumUsd, long? Count, LimitScope Scope)
{
    /// <summary>The longest window a limit may have (366 days): counter entries older than that count in no window.</summary>
    public const long MaxWindowSeconds = 366L * 86400;
}

public sealed record Limits(decimal? PerTransactionNative, decimal? PerTransactionUsd, IReadOnlyList<VelocityLimit> Velocity);

public enum ApprovalMode
{
    And,
    Or,
}

/// <summary>k of the members must approve.</summary>
public sealed record ApprovalGroup(string Name, IReadOnlyList<string> Members, int K);

/// <summary>Groups combined with and/or, and how long a held request waits before it expires.</summary>
public sealed record ApprovalSpec(ApprovalMode Mode, IReadOnlyList<ApprovalGroup> Groups, long TtlSeconds);

/// <summary>
/// A per-risk-level override: a multiplier on every limit (not applied to risk-reducing operations), approvers added to
/// every group's k (capped at the group size), a shorter approval time to live, operations blocked, and operations that
/// need the document's <c>levelApproval</c> at this level.
/// </summary>
public sealed record LevelOverride(decimal LimitMultiplier, int ExtraApprovers, long? ApprovalTtlSeconds, IReadOnlyList<OperationKind> BlockedOperations, IReadOnlyList<OperationKind> ApprovalOperations)
{
    public static LevelOverride Default(RiskLevel level) => level switch
    {
        RiskLevel.Normal => new(1m, 0, null, [], []),
        RiskLevel.Elevated => new(0.5m, 0, null, [], []),
        RiskLevel.Stressed => new(0.2m, 0, null, [], []),
        _ => new(0m, 0, null, [], []),
    };
}

public sealed record PolicyRule
{
    public required string Id { get; init; }
    public required Effect Effect { get; init; }
    public RuleMode Mode { get; init; } = RuleMode.Enforce;
    public RuleMatch Match { get; init; } = new();
    public IReadOnlyList<Condition> Conditions { get; init; } = [];
    public TimeWindow? Time { get; init; }
    public Limits? Limits { get; init; }
    public ApprovalSpec? Approval { get; init; }
}
