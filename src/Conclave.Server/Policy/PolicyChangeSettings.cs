using Conclave.Node.Config;

namespace Conclave.Server.Policy;

/// <summary>
/// server.json <c>policyChanges</c> (docs/POLICY.md "Changing policies"): who approves a policy change, how many of them a
/// loosening needs, and how long a loosening waits after its quorum before it takes effect. A tightening needs one of
/// the approvers and no time lock. Absent: no approvers, so no policy can be changed through the API (the starter
/// policy of server.json is still installed at start).
/// </summary>
public sealed class PolicyChangeSettings
{
    public const int DefaultLooseningQuorum = 2;
    public const long DefaultTimeLockSeconds = 24 * 3600;
    public const long DefaultTtlSeconds = 24 * 3600;

    /// <summary>Principal ids of the approvers of policy changes (each votes as itself, with the role approver).</summary>
    public List<string>? Approvers { get; set; }

    /// <summary>Approvals a loosening needs (default 2).</summary>
    public int? LooseningQuorum { get; set; }

    /// <summary>Seconds between a loosening's quorum and its taking effect (default 86400).</summary>
    public long? TimeLockSeconds { get; set; }

    /// <summary>Seconds a change waits for its votes before it expires (default 86400).</summary>
    public long? TtlSeconds { get; set; }

    public int Quorum => LooseningQuorum ?? DefaultLooseningQuorum;

    public long TimeLock => TimeLockSeconds ?? DefaultTimeLockSeconds;

    public long Ttl => TtlSeconds ?? DefaultTtlSeconds;

    public void Validate()
    {
        List<string> approvers = Approvers ?? [];
        if (approvers.Any(a => string.IsNullOrEmpty(a) || a.Length > 128 || !a.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '@' or '-')))
        {
            throw new ConfigException("policyChanges.approvers: each is a principal id (1-128 characters from [A-Za-z0-9._:@-])");
        }

        if (approvers.Distinct(StringComparer.Ordinal).Count() != approvers.Count)
        {
            throw new ConfigException("policyChanges.approvers: an approver is listed twice");
        }

        if (Quorum < 1 || (approvers.Count > 0 && Quorum > approvers.Count))
        {
            throw new ConfigException("policyChanges.looseningQuorum must be at least 1 and at most the number of approvers");
        }

        if (TimeLock is < 0 or > 30 * 24 * 3600)
        {
            throw new ConfigException("policyChanges.timeLockSeconds must be between 0 and 2592000");
        }

        if (Ttl is < 60 or > 30 * 24 * 3600)
        {
            throw new ConfigException("policyChanges.ttlSeconds must be between 60 and 2592000");
        }
    }
}
