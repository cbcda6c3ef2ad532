using Conclave.Policy.Approvals;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Tests;

public sealed class ApprovalTests
{
    private static readonly DateTimeOffset s_t0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static ApprovalSpec Spec(ApprovalMode mode, long ttl, params ApprovalGroup[] groups) => new(mode, groups, ttl);

    private static ApprovalGroup Risk(int k) => new("risk", ["alice", "bob", "carol"], k);

    private static ApprovalGroup Exec(int k) => new("exec", ["dave", "erin"], k);

    [Fact]
    public void Quorum_met_approves_and_the_last_vote_says_so()
    {
        var req = new ApprovalRequest("r1", "bot", [Spec(ApprovalMode.And, 900, Risk(2))], s_t0);
        Assert.Equal(VoteOutcome.Recorded, req.Cast("alice", true, s_t0.AddSeconds(1), out req));
        Assert.Equal(ApprovalStatus.Pending, req.Status(s_t0.AddSeconds(2)));
        Assert.Equal(VoteOutcome.Approved, req.Cast("bob", true, s_t0.AddSeconds(3), out req));
        Assert.Equal(ApprovalStatus.Approved, req.Status(s_t0.AddSeconds(4)));
        Assert.Equal(VoteOutcome.AlreadyDecided, req.Cast("carol", true, s_t0.AddSeconds(5), out _));
    }

    [Fact]
    public void And_needs_every_group_or_needs_one()
    {
        var and = new ApprovalRequest("r", "bot", [Spec(ApprovalMode.And, 900, Risk(1), Exec(1))], s_t0);
        Assert.Equal(VoteOutcome.Recorded, and.Cast("alice", true, s_t0, out and));
        Assert.Equal(VoteOutcome.Approved, and.Cast("dave", true, s_t0, out _));

        var or = new ApprovalRequest("r", "bot", [Spec(ApprovalMode.Or, 900, Risk(2), Exec(1))], s_t0);
        Assert.Equal(VoteOutcome.Approved, or.Cast("erin", true, s_t0, out _));
    }

    [Fact]
    public void Every_required_spec_must_be_met()
    {
        var req = new ApprovalRequest("r", "bot", [Spec(ApprovalMode.Or, 900, Risk(1)), Spec(ApprovalMode.Or, 300, Exec(1))], s_t0);
        Assert.Equal(s_t0.AddSeconds(300), req.ExpiresAt);
        Assert.Equal(VoteOutcome.Recorded, req.Cast("alice", true, s_t0, out req));
        Assert.Equal(VoteOutcome.Approved, req.Cast("dave", true, s_t0, out _));
    }

    [Fact]
    public void The_initiator_never_counts_even_as_a_group_member()
    {
        var req = new ApprovalRequest("r", "alice", [Spec(ApprovalMode.And, 900, Risk(2))], s_t0);
        Assert.Equal(VoteOutcome.SelfApprovalRefused, req.Cast("alice", true, s_t0, out var next));
        Assert.Same(req, next);
        Assert.Empty(next.Votes);
        Assert.Equal(VoteOutcome.Recorded, req.Cast("bob", true, s_t0, out req));
        Assert.Equal(VoteOutcome.Approved, req.Cast("carol", true, s_t0, out _));
    }

    [Fact]
    public void An_approver_votes_once()
    {
        var req = new ApprovalRequest("r", "bot", [Spec(ApprovalMode.And, 900, Risk(2))], s_t0);
        Assert.Equal(VoteOutcome.Recorded, req.Cast("alice", true, s_t0, out req));
        Assert.Equal(VoteOutcome.AlreadyVoted, req.Cast("alice", true, s_t0, out req));
        Assert.Equal(VoteOutcome.AlreadyVoted, req.Cast("alice", false, s_t0, out req));
        Assert.Single(req.Votes);
        Assert.Equal(ApprovalStatus.Pending, req.Status(s_t0));
    }

    [Fact]
    public void Any_reject_is_final()
    {
        var req = new ApprovalRequest("r", "bot", [Spec(ApprovalMode.Or, 900, Risk(1), Exec(1))], s_t0);
        Assert.Equal(VoteOutcome.Rejected, req.Cast("dave", false, s_t0, out req));
        Assert.Equal(ApprovalStatus.Rejected, req.Status(s_t0));
        Assert.Equal(VoteOutcome.AlreadyDecided, req.Cast("alice", true, s_t0, out req));
        Assert.Equal(ApprovalStatus.Rejected, req.Status(s_t0.AddDays(1)));
    }

    [Fact]
    public void Requests_expire_and_late_votes_are_refused()
    {
        var req = new ApprovalRequest("r", "bot", [Spec(ApprovalMode.And, 60, Risk(2))], s_t0);
        Assert.Equal(VoteOutcome.Recorded, req.Cast("alice", true, s_t0.AddSeconds(59), out req));
        Assert.Equal(ApprovalStatus.Expired, req.Status(s_t0.AddSeconds(60)));
        Assert.Equal(VoteOutcome.Expired, req.Cast("bob", true, s_t0.AddSeconds(60), out _));
    }

    [Fact]
    public void Outsiders_do_not_count()
    {
        var req = new ApprovalRequest("r", "bot", [Spec(ApprovalMode.And, 60, Risk(1))], s_t0);
        Assert.Equal(VoteOutcome.NotAnApprover, req.Cast("mallory", true, s_t0, out _));
        Assert.Equal(VoteOutcome.NotAnApprover, req.Cast("mallory", false, s_t0, out var after));
        Assert.Equal(ApprovalStatus.Pending, after.Status(s_t0));
    }

    [Fact]
    public void A_stressed_level_adds_approvers_and_shortens_the_time_to_live()
    {
        var row = PolicyTable.Rows.First(r => r.GetProperty("name").GetString() == "small release to a listed recipient");
        var request = PolicyTable.Request(row);
        var normal = PolicyEvaluator.Decide(PolicyTable.Policy, request, new EvaluationContext(RiskLevel.Normal, PolicyTable.At(row), PolicyTable.Prices(row)), EmptyCounters.Instance);
        var stressed = PolicyEvaluator.Decide(PolicyTable.Policy, request, new EvaluationContext(RiskLevel.Stressed, PolicyTable.At(row), PolicyTable.Prices(row)), EmptyCounters.Instance);
        Assert.Equal(DecisionOutcome.RequireApproval, normal.Outcome);
        Assert.Equal(2, Assert.Single(Assert.Single(normal.Approvals).Groups).K);
        Assert.Equal(900, normal.Approvals[0].TtlSeconds);

        Assert.Equal(2, stressed.Approvals.Count);
        var ruleSpec = stressed.Approvals[0];
        Assert.Equal(3, Assert.Single(ruleSpec.Groups).K);
        Assert.Equal(300, ruleSpec.TtlSeconds);
        var levelSpec = stressed.Approvals[1];
        Assert.Equal(1, levelSpec.Groups.Single(g => g.Name == "exec").K);
        Assert.Equal(2, levelSpec.Groups.Single(g => g.Name == "risk").K);

        var held = new ApprovalRequest("r", request.Principal.Id, stressed.Approvals, PolicyTable.At(row));
        Assert.Equal(VoteOutcome.Recorded, held.Cast("alice", true, PolicyTable.At(row), out held));
        Assert.Equal(VoteOutcome.Recorded, held.Cast("bob", true, PolicyTable.At(row), out held));
        Assert.Equal(VoteOutcome.Approved, held.Cast("carol", true, PolicyTable.At(row), out _));
    }

    [Fact]
    public void A_request_needs_at_least_one_approval()
    {
        Assert.Throws<PolicyFormatException>(() => new ApprovalRequest("r", "bot", [], s_t0));
    }
}
