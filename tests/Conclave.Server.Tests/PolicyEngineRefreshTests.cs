using System.Text;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;
using Conclave.Server.Policy;
using Conclave.Storage;
using Conclave.Storage.Policy;

namespace Conclave.Server.Tests;

/// <summary>
/// The policy set a decision uses (PolicyEngine.Refresh, server.json policyRefreshMilliseconds): a change this server
/// applies (Invalidate) is used by its next decision; a change another replica applied, once the refresh time has
/// passed; with a refresh of zero, at once. Two engines on one store stand for two replicas.
/// </summary>
public sealed class PolicyEngineRefreshTests : IAsyncLifetime
{
    private readonly TempSqliteStore _temp = new(); // a fresh store for each test

    private IConclaveStore Store => _temp.Store;

    public Task InitializeAsync() => _temp.InitializeAsync();

    public Task DisposeAsync() => _temp.DisposeAsync();

    private static readonly OperationRequest Message = new()
    {
        Principal = new Principal("bot", PrincipalKind.Agent, [Role.Agent], PrincipalScope.Everything),
        Operation = OperationKind.Message,
        KeyId = "k",
    };

    private async Task PutAsync(int version, string effect)
    {
        string text = $$$"""{"id":"p","version":{{{version}}},"rules":[{"id":"r","effect":"{{{effect}}}","match":{"operations":["message"]}}]}""";
        var doc = Conclave.Policy.Documents.PolicyDocument.Parse(text);
        Assert.True(await Store.Policies.PutAsync(new StoredPolicy("p", version, doc.Hash, PolicyMode.Enforce, Encoding.UTF8.GetBytes(text), "test", DateTimeOffset.UtcNow)));
    }

    private static async Task<DecisionOutcome> DecideAsync(PolicyEngine engine) =>
        (await engine.DecideAsync(Message, RiskLevel.Normal, DateTimeOffset.UtcNow, CancellationToken.None)).Outcome;

    [Fact]
    public async Task A_change_applies_at_once_where_it_was_made_and_within_the_refresh_time_elsewhere()
    {
        var here = new PolicyEngine(Store) { Refresh = TimeSpan.FromHours(1) };
        var replica = new PolicyEngine(Store) { Refresh = TimeSpan.FromMilliseconds(300) };
        var everyDecision = new PolicyEngine(Store) { Refresh = TimeSpan.Zero };
        await PutAsync(1, "allow");
        Assert.Equal(DecisionOutcome.Allow, await DecideAsync(here));
        Assert.Equal(DecisionOutcome.Allow, await DecideAsync(replica));
        Assert.Equal(DecisionOutcome.Allow, await DecideAsync(everyDecision));

        // Tightened (a deny) through "here": its next decision denies; the other replica still uses the set it read,
        // until its refresh time has passed; an engine that reads at every decision denies at once.
        await PutAsync(2, "deny");
        here.Invalidate();
        Assert.Equal(DecisionOutcome.Deny, await DecideAsync(here));
        Assert.Equal(DecisionOutcome.Allow, await DecideAsync(replica));
        Assert.Equal(DecisionOutcome.Deny, await DecideAsync(everyDecision));
        await Task.Delay(400);
        Assert.Equal(DecisionOutcome.Deny, await DecideAsync(replica));
    }
}
