using Conclave.Policy.Documents;

namespace Conclave.Policy.Approvals;

public enum ApprovalStatus
{
    Pending,
    Approved,
    Rejected,
    Expired,
}

public enum VoteOutcome
{
    /// <summary>Counted; the request is still pending.</summary>
    Recorded,

    /// <summary>Counted, and every approval is now met: the request may be signed.</summary>
    Approved,

    /// <summary>A reject from an eligible approver: final.</summary>
    Rejected,

    /// <summary>The initiator of the request never counts.</summary>
    SelfApprovalRefused,

    /// <summary>An approver votes once.</summary>
    AlreadyVoted,

    /// <summary>Not a member of any group of any required approval.</summary>
    NotAnApprover,

    /// <summary>The request is past its time to live.</summary>
    Expired,

    /// <summary>The request was already approved or rejected.</summary>
    AlreadyDecided,
}

/// <summary>One vote as recorded.</summary>
public sealed record Vote(string ApproverId, bool Approve, DateTimeOffset At);

/// <summary>
/// A held request and its votes (issue 16 "Approvals"): every required <see cref="ApprovalSpec"/> must be met (k of n
/// per group, groups combined with and/or); the initiator never counts, an approver votes once (one vote counts in
/// every group the approver belongs to), any reject from an eligible approver is final, and the request expires after
/// the shortest time to live among the specs. Immutable: <see cref="Cast"/> returns the next state. Pure; the time is
/// passed in.
/// </summary>
public sealed record ApprovalRequest
{
    public ApprovalRequest(string requestId, string initiatorId, IReadOnlyList<ApprovalSpec> required, DateTimeOffset createdAt)
    {
        ArgumentNullException.ThrowIfNull(required);
        if (required.Count == 0)
        {
            throw PolicyErrors.Missing("approvals");
        }

        RequestId = requestId;
        InitiatorId = initiatorId;
        Required = required;
        CreatedAt = createdAt;
        ExpiresAt = createdAt + TimeSpan.FromSeconds(required.Min(s => s.TtlSeconds));
        Votes = [];
    }

    public string RequestId { get; }

    public string InitiatorId { get; }

    public IReadOnlyList<ApprovalSpec> Required { get; }

    public DateTimeOffset CreatedAt { get; }

    public DateTimeOffset ExpiresAt { get; }

    public IReadOnlyList<Vote> Votes { get; private init; }

    public bool IsEligible(string approverId) => Required.Any(s => s.Groups.Any(g => g.Members.Contains(approverId, StringComparer.Ordinal)));

    public ApprovalStatus Status(DateTimeOffset now)
    {
        if (Votes.Any(v => !v.Approve))
        {
            return ApprovalStatus.Rejected;
        }

        if (Required.All(IsMet))
        {
            return ApprovalStatus.Approved;
        }

        return now >= ExpiresAt ? ApprovalStatus.Expired : ApprovalStatus.Pending;
    }

    /// <summary>Casts a vote; the outcome says what happened and <paramref name="next"/> is the new state (unchanged when refused).</summary>
    public VoteOutcome Cast(string approverId, bool approve, DateTimeOffset now, out ApprovalRequest next)
    {
        next = this;
        var status = Status(now);
        if (status is ApprovalStatus.Approved or ApprovalStatus.Rejected)
        {
            return VoteOutcome.AlreadyDecided;
        }

        if (status == ApprovalStatus.Expired)
        {
            return VoteOutcome.Expired;
        }

        if (string.Equals(approverId, InitiatorId, StringComparison.Ordinal))
        {
            return VoteOutcome.SelfApprovalRefused;
        }

        if (!IsEligible(approverId))
        {
            return VoteOutcome.NotAnApprover;
        }

        if (Votes.Any(v => string.Equals(v.ApproverId, approverId, StringComparison.Ordinal)))
        {
            return VoteOutcome.AlreadyVoted;
        }

        next = this with { Votes = [.. Votes, new Vote(approverId, approve, now)] };
        return !approve ? VoteOutcome.Rejected : next.Status(now) == ApprovalStatus.Approved ? VoteOutcome.Approved : VoteOutcome.Recorded;
    }

    private bool IsMet(ApprovalSpec spec)
    {
        bool GroupMet(ApprovalGroup g) => Votes.Count(v => v.Approve && g.Members.Contains(v.ApproverId, StringComparer.Ordinal)) >= g.K;
        return spec.Mode == ApprovalMode.And ? spec.Groups.All(GroupMet) : spec.Groups.Any(GroupMet);
    }
}
