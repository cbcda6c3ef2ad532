namespace Conclave.Policy.Risk;

/// <summary>The current level, why, since when, and when the signals last demanded it.</summary>
public sealed record RiskState(RiskLevel Level, DateTimeOffset Since, IReadOnlyList<string> Reasons, DateTimeOffset LastDemandedAt)
{
    public static RiskState Initial(DateTimeOffset now) => new(RiskLevel.Normal, now, [], now);
}

public enum LockdownExitOutcome
{
    Left,
    NotInLockdown,
    QuorumNotMet,
    CoolDownNotOver,
    StillDemanded,
}

/// <summary>
/// The ratchet (issue 16 "Risk levels"): a level rises at once when the signals demand a higher one; it falls only once
/// the signals have not demanded it for the cool-down; lockdown is never left automatically, only through
/// <see cref="ExitLockdown"/> with the configured approver quorum (and after the cool-down, while nothing demands
/// lockdown). Pure: state in, state out.
/// </summary>
public static class RiskRatchet
{
    public static RiskState Step(RiskConfig config, RiskState state, RiskSignals signals, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(state);
        var (demanded, reasons) = RiskTriggers.Demanded(config, signals, now);
        return Step(config, state, demanded, reasons, now);
    }

    public static RiskState Step(RiskConfig config, RiskState state, RiskLevel demanded, IReadOnlyList<string> reasons, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(state);
        if (demanded > state.Level)
        {
            return new RiskState(demanded, now, reasons, now);
        }

        if (demanded == state.Level)
        {
            return state with { LastDemandedAt = now, Reasons = reasons.Count > 0 ? reasons : state.Reasons };
        }

        if (state.Level == RiskLevel.Lockdown || now - state.LastDemandedAt < config.CoolDown)
        {
            return state;
        }

        return new RiskState(demanded, now, [.. reasons, $"fell from {RiskLevels.Name(state.Level)} after a cool-down of {config.CoolDown.TotalSeconds} s"], now);
    }

    /// <summary>
    /// Leaves lockdown for stressed (or higher if demanded) when at least k distinct members of the configured group
    /// approve, the cool-down since lockdown was last demanded is over, and the signals no longer demand lockdown.
    /// </summary>
    public static LockdownExitOutcome ExitLockdown(RiskConfig config, RiskState state, IReadOnlyCollection<string> approvers, RiskLevel demanded, DateTimeOffset now, out RiskState next)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(approvers);
        next = state;
        if (state.Level != RiskLevel.Lockdown)
        {
            return LockdownExitOutcome.NotInLockdown;
        }

        if (demanded == RiskLevel.Lockdown)
        {
            return LockdownExitOutcome.StillDemanded;
        }

        int valid = approvers.Distinct(StringComparer.Ordinal).Count(a => config.LockdownExit.Members.Contains(a, StringComparer.Ordinal));
        if (valid < config.LockdownExit.K || config.LockdownExit.Members.Count == 0)
        {
            return LockdownExitOutcome.QuorumNotMet;
        }

        if (now - state.LastDemandedAt < config.CoolDown)
        {
            return LockdownExitOutcome.CoolDownNotOver;
        }

        var to = demanded > RiskLevel.Stressed ? demanded : RiskLevel.Stressed;
        next = new RiskState(to, now, [$"left lockdown with the approval of {valid} approver(s)"], now);
        return LockdownExitOutcome.Left;
    }
}
