using System.Security.Cryptography;
using System.Text;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Risk;
using Conclave.Storage;
using Conclave.Storage.Policy;

namespace Conclave.Server.Policy;

/// <summary>
/// One decision of the server (issue 16 "Policies"): every stored document evaluated and combined
/// (docs/POLICY.md "Several documents"). <see cref="Reservations"/> are the velocity counters to reserve when it is
/// allowed; <see cref="Approvals"/> the approvals that must all be met when it is held; <see cref="Shadow"/> what the
/// decision would be with shadow documents and shadow rules enforced (null when there are none).
/// </summary>
public sealed record ServerDecision(
    DecisionOutcome Outcome,
    string PolicyHash,
    IReadOnlyList<string> Rules,
    IReadOnlyList<string> Reasons,
    IReadOnlyList<Reservation> Reservations,
    IReadOnlyList<ApprovalSpec> Approvals,
    IReadOnlyList<(string Id, long Version, string Hash, DecisionOutcome Outcome)> Policies,
    ServerDecision? Shadow = null)
{
    public string OutcomeName => Decision.OutcomeName(Outcome);

    /// <summary>
    /// Decided with every velocity counter taken as empty, without reading the store (<see cref="PolicyEngine.DecideAsync"/>
    /// with <c>provisional</c>): an allow that reserves counters, whose caps the reservation then checks under the
    /// counters' locks. When the reservation holds, this is the decision the counters' totals give (see there); when it
    /// does not, the caller decides again on what the store holds.
    /// </summary>
    public bool Provisional { get; init; }
}

/// <summary>A parsed stored document.</summary>
public sealed record LoadedPolicy(StoredPolicy Stored, PolicyDocument Document);

/// <summary>
/// Reads the policy documents from the store (so every replica on one database decides with the same set; a change
/// applies to the next request of the server that made it and within <see cref="Refresh"/> on the others), evaluates a request against each with Conclave.Policy's pure
/// <see cref="PolicyEvaluator"/>, and combines the results: a document that denies by a rule, a level block or a gate
/// decides deny; a document none of whose rules grants the request does not decide; the request is allowed or held
/// only when no document denies and at least one grants, and then every approval any granting document triggers must
/// be met. No document at all: default deny.
/// </summary>
public sealed class PolicyEngine(IConclaveStore store)
{
    private readonly Dictionary<(string, long), LoadedPolicy> _parsed = [];

    /// <summary>The set last read and when (Stopwatch ticks); null: read at the next decision.</summary>
    private volatile Snapshot? _current;

    /// <summary>Bumped by <see cref="Invalidate"/>: a read that began before it does not become the current set.</summary>
    private long _generation;

    private sealed record Snapshot(IReadOnlyList<LoadedPolicy> Policies, long ReadAt);

    public IConclaveStore Store { get; } = store;

    /// <summary>
    /// How long a decision may use the set of documents read by an earlier one (server.json
    /// <c>policyRefreshMilliseconds</c>, default 1 s; zero: read at every decision). A change applied through this server
    /// (<see cref="Invalidate"/>) applies to its next request; one applied by another replica on the same database,
    /// within this time — as the risk level, which replicas re-read every <c>risk.pollMilliseconds</c>.
    /// </summary>
    public TimeSpan Refresh { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The stored documents changed (a policy put by this server): the next decision reads them again.</summary>
    public void Invalidate()
    {
        Interlocked.Increment(ref _generation);
        _current = null;
    }

    /// <summary>
    /// The newest version of every stored document, parsed, as read within <see cref="Refresh"/>. A read takes only the
    /// ids, versions and hashes (<see cref="IPolicyStore.ListHeadsAsync"/>); a stored version never changes, so a parsed
    /// copy is kept by id and version and a document is fetched and parsed only the first time its version is seen (or
    /// if its hash differs).
    /// </summary>
    public async Task<IReadOnlyList<LoadedPolicy>> LoadAsync(CancellationToken ct)
    {
        if (_current is { } current && System.Diagnostics.Stopwatch.GetElapsedTime(current.ReadAt) < Refresh)
        {
            return current.Policies;
        }

        long generation = Interlocked.Read(ref _generation);
        long readAt = System.Diagnostics.Stopwatch.GetTimestamp();
        IReadOnlyList<PolicyHead> heads = await Store.Policies.ListHeadsAsync(ct).ConfigureAwait(false);
        var list = new List<LoadedPolicy>(heads.Count);
        foreach (PolicyHead head in heads)
        {
            LoadedPolicy? p;
            lock (_parsed)
            {
                _parsed.TryGetValue((head.Id, head.Version), out p);
            }

            if (p is null || p.Stored.Hash != head.Hash)
            {
                StoredPolicy s = await Store.Policies.GetAsync(head.Id, head.Version, ct).ConfigureAwait(false)
                    ?? throw new InvalidOperationException($"policy {head.Id} v{head.Version} was listed but cannot be read");
                p = new LoadedPolicy(s, PolicyDocument.Parse(Encoding.UTF8.GetString(s.Document)));
                lock (_parsed)
                {
                    // Older versions of this id are no longer decided with: keep only the newest parsed.
                    foreach ((string, long) old in _parsed.Keys.Where(k => k.Item1 == head.Id && k.Item2 < head.Version).ToList())
                    {
                        _parsed.Remove(old);
                    }

                    _parsed[(head.Id, head.Version)] = p;
                }
            }

            list.Add(p);
        }

        if (Interlocked.Read(ref _generation) == generation)
        {
            _current = new Snapshot(list, readAt);
        }

        return list;
    }

    /// <summary>
    /// Decides a request at a risk level and time, with <paramref name="usdPrices"/> (each price source's fresh USD
    /// price, <see cref="Api.IRiskLevelSource.FreshUsdPrices"/>; none: every USD limit denies). Velocity counters are read from the store — unless
    /// <paramref name="provisional"/> and the decision with every counter taken as empty is an allow that reserves
    /// counters, with no shadow decision beside it: that decision is returned as it is, marked
    /// <see cref="ServerDecision.Provisional"/>, and the store is not read. It is exact once its reservation holds: the
    /// reservation carries every velocity limit of every granting rule with the caps the evaluator compares against
    /// (<c>total + this request &gt; cap</c> in both), so if the store's totals leave room in all of them the evaluator
    /// would have found every one of those limits holding, the same rules granting and the same allow; and taking counters
    /// as empty can only let more rules grant, never fewer, so no rule the store's totals let grant is missing. When the
    /// reservation fails, the caller must decide again without <paramref name="provisional"/>.
    /// </summary>
    public async Task<ServerDecision> DecideAsync(OperationRequest request, RiskLevel level, DateTimeOffset now, CancellationToken ct, IReadOnlyList<LoadedPolicy>? policies = null,
        bool provisional = false, IReadOnlyDictionary<string, decimal>? usdPrices = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        policies ??= await LoadAsync(ct).ConfigureAwait(false);
        var context = new EvaluationContext(level, now, usdPrices);

        // The evaluator is pure and reads counters synchronously: evaluate with what has been read, read what it asked
        // for and was missing, and evaluate again until nothing is missing. The reservation re-checks every cap under
        // the store's row locks anyway, so a read that is stale by then can only make the reservation fail (deny).
        var counters = new PrefetchedCounters();
        for (int pass = 0; ; pass++)
        {
            (ServerDecision d, bool complete) = Evaluate(policies, request, context, counters);
            if (complete || pass >= 4)
            {
                return d;
            }

            if (provisional && pass == 0 && d.Outcome == DecisionOutcome.Allow && d.Reservations.Count > 0 && d.Shadow is null)
            {
                return d with { Provisional = true };
            }

            foreach ((string key, long window) in counters.TakeMissing())
            {
                CounterTotals t = await Store.PolicyCounters.ReadAsync(key, window, now, ct).ConfigureAwait(false);
                counters.Add(key, window, new VelocityTotals(t.Native, t.Usd, t.Count));
            }
        }
    }

    private static (ServerDecision Decision, bool Complete) Evaluate(IReadOnlyList<LoadedPolicy> policies, OperationRequest request, EvaluationContext context, PrefetchedCounters counters)
    {
        var live = new List<(LoadedPolicy P, Decision D)>();
        var shadowView = new List<(LoadedPolicy P, Decision D)>();
        bool anyShadow = false;
        foreach (LoadedPolicy p in policies)
        {
            Decision d = PolicyEvaluator.Decide(p.Document, request, context, counters);
            if (p.Stored.Mode == PolicyMode.Enforce)
            {
                live.Add((p, d));
            }

            anyShadow |= p.Stored.Mode == PolicyMode.Shadow || d.Shadow is not null;
            shadowView.Add((p, d.Shadow ?? d));
        }

        ServerDecision decision = Combine(live);
        if (anyShadow)
        {
            decision = decision with { Shadow = Combine(shadowView) };
        }

        return (decision, !counters.HasMissing);
    }

    /// <summary>The combination rule (docs/POLICY.md "Several documents").</summary>
    internal static ServerDecision Combine(IReadOnlyList<(LoadedPolicy P, Decision D)> decisions)
    {
        var summary = decisions.Select(x => (x.P.Stored.Id, x.P.Stored.Version, x.P.Stored.Hash, x.D.Outcome)).ToList();
        if (decisions.Count == 0)
        {
            return new ServerDecision(DecisionOutcome.Deny, "none", [], ["no policy is installed (default deny)"], [], [], summary);
        }

        string setHash = SetHash(decisions.Select(x => x.P));
        var vetoes = decisions.Where(x => x.D.Outcome == DecisionOutcome.Deny && !x.D.NoRuleGranted).ToList();
        if (vetoes.Count > 0)
        {
            return new ServerDecision(DecisionOutcome.Deny, vetoes.Count == 1 ? vetoes[0].D.PolicyHash : setHash, Rules(vetoes), Reasons(vetoes), [], [], summary);
        }

        var granting = decisions.Where(x => x.D.Outcome != DecisionOutcome.Deny).ToList();
        if (granting.Count == 0)
        {
            return new ServerDecision(DecisionOutcome.Deny, decisions.Count == 1 ? decisions[0].D.PolicyHash : setHash, Rules(decisions), Reasons(decisions), [], [], summary);
        }

        bool held = granting.Any(x => x.D.Outcome == DecisionOutcome.RequireApproval);
        return new ServerDecision(held ? DecisionOutcome.RequireApproval : DecisionOutcome.Allow, granting.Count == 1 ? granting[0].D.PolicyHash : setHash,
            Rules(granting), Reasons(granting), [.. granting.SelectMany(x => x.D.Reservations)], [.. granting.SelectMany(x => x.D.Approvals)], summary);
    }

    /// <summary>
    /// The hash naming a set of documents: <c>sha256:</c> and the hex SHA-256 of the lines <c>id hash</c>, sorted by id.
    /// With a single document the decision names that document's own hash instead.
    /// </summary>
    public static string SetHash(IEnumerable<LoadedPolicy> policies)
    {
        string lines = string.Join("\n", policies.OrderBy(p => p.Stored.Id, StringComparer.Ordinal).Select(p => p.Stored.Id + " " + p.Stored.Hash));
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(lines)));
    }

    private static string[] Rules(IEnumerable<(LoadedPolicy P, Decision D)> ds) => [.. ds.SelectMany(x => x.D.Rules.Select(r => x.P.Stored.Id + "/" + r))];

    private static string[] Reasons(IEnumerable<(LoadedPolicy P, Decision D)> ds)
    {
        var list = ds.ToList();
        return list.Count == 1 ? [.. list[0].D.Reasons] : [.. list.SelectMany(x => x.D.Reasons.Select(r => $"policy {x.P.Stored.Id}: {r}"))];
    }

    /// <summary>Counter totals read ahead from the store; a key not read yet counts as empty and is remembered.</summary>
    private sealed class PrefetchedCounters : IVelocityCounters
    {
        private readonly Dictionary<(string, long), VelocityTotals> _read = [];
        private readonly HashSet<(string, long)> _missing = [];

        public bool HasMissing => _missing.Count > 0;

        public VelocityTotals Read(string counterKey, long windowSeconds, DateTimeOffset now)
        {
            if (_read.TryGetValue((counterKey, windowSeconds), out VelocityTotals t))
            {
                return t;
            }

            _missing.Add((counterKey, windowSeconds));
            return default;
        }

        public List<(string, long)> TakeMissing()
        {
            var list = _missing.ToList();
            _missing.Clear();
            return list;
        }

        public void Add(string key, long window, VelocityTotals totals) => _read[(key, window)] = totals;
    }
}
