using Microsoft.Extensions.Logging;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Conclave.Policy.Risk;
using Conclave.Server.Api;
using Conclave.Server.Rotation;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Risk;

namespace Conclave.Server.Risk;

/// <summary>What the level was computed from at the last refresh (GET /v1/risk "inputs").</summary>
public sealed record RiskInputs(
    RiskLevel Manual,
    string? ManualBy,
    string? ManualReason,
    DateTimeOffset? ManualAt,
    IReadOnlyList<PriceSourceInput> Prices,
    int ThreatEvents,
    int CulpritNodes,
    RiskLevel Demanded,
    IReadOnlyList<string> DemandedReasons);

/// <summary>One price source: its realised volatility over the window (null with fewer than two samples in it), samples in the window, latest sample.</summary>
public sealed record PriceSourceInput(string Source, double? Volatility, int Samples, DateTimeOffset? LatestAt, bool Stale);

/// <summary>The level in force, what it was computed from, and the votes to leave a lockdown.</summary>
public sealed record RiskSnapshot(RiskState State, RiskInputs Inputs, IReadOnlyList<string> LockdownExitVotes, DateTimeOffset? CanFallAfter)
{
    /// <summary>Each price source's latest sample (the newest by its time) among those read.</summary>
    public IReadOnlyDictionary<string, PriceSample> LatestPrices { get; init; } = new Dictionary<string, PriceSample>(StringComparer.Ordinal);
}

/// <summary>The outcome of an approver's vote to leave lockdown.</summary>
public sealed record LockdownVote(string Outcome, RiskSnapshot Snapshot);

/// <summary>
/// The risk subsystem of the server (issue 16 "Risk levels"; docs/POLICY.md): holds the current <see cref="RiskState"/>
/// for policy enforcement (<see cref="IRiskLevelSource"/>), computes the triggers (<see cref="RiskTriggers"/>: realised
/// volatility of the posted price samples, stale prices, bursts of refused requests, culprit and evicted nodes) and
/// applies the ratchet (<see cref="RiskRatchet"/>) under the store's lock on the one state row, so replicas on one
/// PostgreSQL share one level. Every change of level is audited (actor "risk" or the caller, action <c>risk.level</c>,
/// the reasons); a rise to <see cref="RotateAtLevel"/> or above demands a refresh of every key with a rotation schedule
/// (<see cref="ContinuousRotator.DemandAsync"/>). A replica re-reads and recomputes every <see cref="PollInterval"/>
/// and after each of its own changes; the level enforcement reads (<see cref="Current"/>) is the last one read. The
/// clock is injected.
/// </summary>
public sealed class RiskService : IRiskLevelSource
{
    /// <summary>Threat events a replica holds until its next refresh adds them to the store (older ones are dropped first).</summary>
    public const int MaxThreatEvents = 100_000;

    /// <summary>Price samples accepted per request.</summary>
    public const int MaxSamplesPerRequest = 1000;

    private readonly IConclaveStore _store;
    private readonly TimeProvider _clock;
    private readonly ConcurrentQueue<DateTimeOffset> _threats = new();
    private readonly ConcurrentDictionary<uint, DateTimeOffset> _culprits = new();
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private volatile RiskSnapshot _snapshot;

    public RiskService(IConclaveStore store, RiskConfig config, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(config);
        _store = store;
        Config = config;
        _clock = clock ?? TimeProvider.System;
        DateTimeOffset now = _clock.GetUtcNow();
        _snapshot = new RiskSnapshot(RiskState.Initial(now), new RiskInputs(RiskLevel.Normal, null, null, null, [], 0, 0, RiskLevel.Normal, []), [], null);
    }

    public RiskConfig Config { get; }

    /// <summary>The scheduled keys' rotations to demand on a rise (null: none).</summary>
    public ContinuousRotator? Rotator { get; init; }

    /// <summary>A rise to this level or above demands a refresh of every scheduled key; null never.</summary>
    public RiskLevel? RotateAtLevel { get; init; } = RiskLevel.Stressed;

    /// <summary>How often <see cref="RunAsync"/> re-reads the shared level.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The service's clock, now.</summary>
    public DateTimeOffset Now => _clock.GetUtcNow();

    /// <inheritdoc/>
    public RiskState Current => _snapshot.State;

    /// <inheritdoc/>
    /// <remarks>
    /// From the last snapshot: samples posted to this replica are in it at once (the post refreshes it); another
    /// replica's within <see cref="PollInterval"/>. Freshness is judged at <paramref name="now"/>, not at the refresh.
    /// </remarks>
    public IReadOnlyDictionary<string, decimal> FreshUsdPrices(DateTimeOffset now)
    {
        var fresh = new Dictionary<string, decimal>(StringComparer.Ordinal);
        foreach ((string source, PriceSample latest) in _snapshot.LatestPrices)
        {
            if (!Config.IsStale(latest.At, now))
            {
                fresh[source] = latest.Price;
            }
        }

        return fresh;
    }

    /// <summary>The last snapshot read (no store access).</summary>
    public RiskSnapshot Snapshot => _snapshot;

    /// <summary>
    /// A threat event (a refused, denied or badly signed request) now. Held in memory (no store write on the request's
    /// path) until this replica's next refresh adds it to the count every replica shares.
    /// </summary>
    public void RecordThreat()
    {
        _threats.Enqueue(_clock.GetUtcNow());
        while (_threats.Count > MaxThreatEvents && _threats.TryDequeue(out _))
        {
        }
    }

    /// <summary>Signer nodes named as culprits (a bad share, a wrong key): each counts for the threat window.</summary>
    public void RecordCulprits(IEnumerable<uint> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        DateTimeOffset now = _clock.GetUtcNow();
        foreach (uint n in nodes)
        {
            _culprits[n] = now;
        }
    }

    /// <summary>Re-reads the shared state, recomputes the triggers and applies the ratchet (writing only a change).</summary>
    public Task<RiskSnapshot> RefreshAsync(CancellationToken ct) => ApplyAsync("risk", null, ct);

    /// <summary>
    /// Sets the manual level (a floor: an operator or risk system, PUT /v1/risk). A higher level applies at once; a lower
    /// one lowers only the floor, and the level falls after the cool-down (lockdown only through the approvers' votes).
    /// </summary>
    public async Task<RiskSnapshot> SetManualAsync(RiskLevel level, string actor, string? reason, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(actor);
        DateTimeOffset now = _clock.GetUtcNow();
        await AuditAsync(actor, "risk.set", "allow", Shorten($"manual level {RiskLevels.Name(level)}" + (string.IsNullOrEmpty(reason) ? "" : ": " + reason))).ConfigureAwait(false);
        return await ApplyAsync(actor, s => s with { ManualLevel = RiskLevels.Name(level), ManualBy = actor, ManualReason = reason, ManualAt = now }, ct).ConfigureAwait(false);
    }

    /// <summary>Adds price samples (at = null: now) and recomputes at once, so a spike raises the level on this request.</summary>
    public async Task<RiskSnapshot> AddPricesAsync(IReadOnlyList<StoredPriceSample> samples, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(samples);
        DateTimeOffset now = _clock.GetUtcNow();
        long keep = Math.Max(Config.VolatilityWindowSeconds, Config.StalePriceSeconds) * 2;
        await _store.Risk.AddPricesAsync(samples, now - TimeSpan.FromSeconds(keep), ct).ConfigureAwait(false);
        return await ApplyAsync("risk", null, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// An approver's vote to leave the current lockdown (the caller must be one of the configured approvers; that is
    /// checked by the route). The vote is kept for this lockdown; lockdown is left for stressed once k distinct
    /// approvers voted, the cool-down since lockdown was last demanded is over, and nothing demands lockdown any more —
    /// on this vote, or on a later refresh once the last two hold. Outcome: left, recorded (quorum not met yet),
    /// waiting-cool-down, still-demanded, already-voted, not-in-lockdown.
    /// </summary>
    public async Task<LockdownVote> VoteLockdownExitAsync(string approver, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(approver);
        RiskSnapshot before = await RefreshAsync(ct).ConfigureAwait(false);
        if (before.State.Level != RiskLevel.Lockdown)
        {
            return new LockdownVote("not-in-lockdown", before);
        }

        DateTimeOffset now = _clock.GetUtcNow();
        bool added = await _store.Risk.AddLockdownVoteAsync(before.State.Since, approver, now, ct).ConfigureAwait(false);
        await AuditAsync(approver, "risk.lockdown-exit", added ? "allow" : "deny", added ? "vote to leave lockdown recorded" : "already voted to leave this lockdown").ConfigureAwait(false);
        RiskSnapshot after = await ApplyAsync(approver, null, ct).ConfigureAwait(false);
        if (!added)
        {
            return new LockdownVote("already-voted", after);
        }

        if (after.State.Level != RiskLevel.Lockdown)
        {
            return new LockdownVote("left", after);
        }

        IReadOnlyList<string> votes = after.LockdownExitVotes;
        RiskLevel demanded = after.Inputs.Demanded;
        string outcome = RiskRatchet.ExitLockdown(Config, after.State, votes, demanded, now, out _) switch
        {
            LockdownExitOutcome.StillDemanded => "still-demanded",
            LockdownExitOutcome.CoolDownNotOver => "waiting-cool-down",
            _ => "recorded",
        };
        return new LockdownVote(outcome, after);
    }

    /// <summary>
    /// Re-reads and recomputes every <see cref="PollInterval"/> until the server stops. Never throws and never stops
    /// before: a pass that fails leaves the last level read in force and is logged (Hosting.BackgroundLog); the next tick
    /// tries again.
    /// </summary>
    public async Task RunAsync(CancellationToken stopping, ILogger? log = null)
    {
        using var timer = new PeriodicTimer(PollInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
            {
                await Hosting.BackgroundLog.RunPassAsync("risk level", () => RefreshAsync(stopping), log ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, stopping)
                    .ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task<RiskSnapshot> ApplyAsync(string actor, Func<StoredRiskState, StoredRiskState>? manual, CancellationToken ct)
    {
        await _refresh.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            DateTimeOffset now = _clock.GetUtcNow();
            long window = Config.VolatilityWindowSeconds;
            IReadOnlyList<StoredPriceSample> samples = await _store.Risk.ReadPricesAsync(now - TimeSpan.FromSeconds(Math.Max(window, Config.StalePriceSeconds)), ct).ConfigureAwait(false);
            var prices = samples.GroupBy(s => s.Source, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => (IReadOnlyList<PriceSample>)[.. g.Select(s => new PriceSample(s.At, s.Price))], StringComparer.Ordinal);
            IReadOnlyList<ThreatBucket> threatBuckets = await ShareThreatsAsync(now, ct).ConfigureAwait(false);
            DateTimeOffset threatFrom = now - TimeSpan.FromSeconds(Config.ThreatWindowSeconds);
            int threats = (int)Math.Min(int.MaxValue, threatBuckets.Where(b => b.At > threatFrom && b.At <= now).Sum(b => b.Count));
            int culprits = await CountCulpritsAsync(now, ct).ConfigureAwait(false);
            StoredRiskState? pre = await _store.Risk.GetAsync(ct).ConfigureAwait(false);
            IReadOnlyList<string> votes = pre is not null && pre.Level == "lockdown" ? await _store.Risk.LockdownVotesAsync(pre.Since, ct).ConfigureAwait(false) : [];

            RiskLevel demanded = RiskLevel.Normal;
            IReadOnlyList<string> demandedReasons = [];
            StoredRiskState? Change(StoredRiskState? stored)
            {
                StoredRiskState s = stored ?? ToStored(RiskState.Initial(now), RiskLevel.Normal, null, null, null);
                StoredRiskState withManual = manual is null ? s : manual(s);
                var signals = new RiskSignals { Manual = ParseLevel(withManual.ManualLevel), Prices = prices, ThreatBuckets = threatBuckets, CulpritNodes = culprits };
                (demanded, demandedReasons) = RiskTriggers.Demanded(Config, signals, now);
                RiskState state = ToState(withManual);
                RiskState next = RiskRatchet.Step(Config, state, demanded, demandedReasons, now);
                if (next.Level == RiskLevel.Lockdown && votes.Count > 0 && next.Since == pre?.Since
                    && RiskRatchet.ExitLockdown(Config, next, votes, demanded, now, out RiskState exited) == LockdownExitOutcome.Left)
                {
                    next = exited;
                }

                bool changed = stored is null || manual is not null || next.Level != state.Level
                    || (next.Level > RiskLevel.Normal && next.LastDemandedAt != state.LastDemandedAt) || !next.Reasons.SequenceEqual(state.Reasons, StringComparer.Ordinal);
                return changed ? ToStored(next, ParseLevel(withManual.ManualLevel), withManual.ManualBy, withManual.ManualReason, withManual.ManualAt) with { Version = s.Version } : null;
            }

            // Most refreshes change nothing: decided on the state just read, without taking the row lock (a poll per
            // second per replica would otherwise be a write transaction each). A change is recomputed under the lock.
            (StoredRiskState? before, StoredRiskState? after) = pre is not null && manual is null && Change(pre) is null
                ? (pre, pre)
                : await _store.Risk.UpdateAsync(Change, ct).ConfigureAwait(false);

            StoredRiskState current = after ?? ToStored(RiskState.Initial(now), RiskLevel.Normal, null, null, null);
            RiskState state = ToState(current);
            RiskLevel from = before is null ? RiskLevel.Normal : ParseLevel(before.Level);
            if (before is null ? state.Level != RiskLevel.Normal : !ReferenceEquals(before, after) && from != state.Level)
            {
                await AuditAsync(actor, "risk.level", "allow", Shorten($"{RiskLevels.Name(from)} -> {RiskLevels.Name(state.Level)}: {string.Join("; ", state.Reasons)}")).ConfigureAwait(false);
                if (state.Level > from && RotateAtLevel is { } at && state.Level >= at && Rotator is not null)
                {
                    await DemandRotationsAsync(state.Level, ct).ConfigureAwait(false);
                }
            }

            IReadOnlyList<string> currentVotes = state.Level == RiskLevel.Lockdown ? await _store.Risk.LockdownVotesAsync(state.Since, ct).ConfigureAwait(false) : [];
            Dictionary<string, PriceSample> latestPrices = prices.ToDictionary(p => p.Key, p => p.Value.MaxBy(x => x.At), StringComparer.Ordinal);
            var priceInputs = prices.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p =>
            {
                DateTimeOffset latest = latestPrices[p.Key].At;
                int inWindow = p.Value.Count(x => x.At > now - TimeSpan.FromSeconds(window) && x.At <= now);
                return new PriceSourceInput(p.Key, RiskTriggers.RealisedVolatility(p.Value, window, now), inWindow, latest, Config.IsStale(latest, now));
            }).ToList();
            var inputs = new RiskInputs(ParseLevel(current.ManualLevel), current.ManualBy, current.ManualReason, current.ManualAt, priceInputs, threats, culprits, demanded, demandedReasons);
            DateTimeOffset? canFall = state.Level is RiskLevel.Normal or RiskLevel.Lockdown ? null : state.LastDemandedAt + Config.CoolDown;
            var snapshot = new RiskSnapshot(state, inputs, currentVotes, canFall) { LatestPrices = latestPrices };
            _snapshot = snapshot;
            return snapshot;
        }
        finally
        {
            _refresh.Release();
        }
    }

    /// <summary>
    /// Adds this replica's threat events recorded since its last refresh to the store (counted per second, so replicas
    /// on one database add to the same rows; seconds older than twice the threat window are pruned) and reads the
    /// shared counts of the window back. If the store refuses, the events are kept for the next refresh.
    /// </summary>
    private async Task<IReadOnlyList<ThreatBucket>> ShareThreatsAsync(DateTimeOffset now, CancellationToken ct)
    {
        var taken = new List<DateTimeOffset>();
        while (_threats.TryDequeue(out DateTimeOffset t))
        {
            taken.Add(t);
        }

        TimeSpan window = TimeSpan.FromSeconds(Config.ThreatWindowSeconds);
        if (taken.Count > 0)
        {
            StoredThreatBucket[] buckets = [.. taken.GroupBy(t => t.ToUnixTimeMilliseconds() / 1000)
                .Select(g => new StoredThreatBucket(DateTimeOffset.FromUnixTimeSeconds(g.Key), g.Count()))];
            try
            {
                await _store.Risk.AddThreatsAsync(buckets, now - window - window, ct).ConfigureAwait(false);
            }
            catch
            {
                foreach (DateTimeOffset t in taken.TakeLast(MaxThreatEvents))
                {
                    _threats.Enqueue(t);
                }

                throw;
            }
        }

        return [.. (await _store.Risk.ReadThreatsAsync(now - window, ct).ConfigureAwait(false)).Select(b => new ThreatBucket(b.At, b.Count))];
    }

    /// <summary>Nodes named as culprits in the threat window on this replica, and every evicted node (the store's list, shared).</summary>
    private async Task<int> CountCulpritsAsync(DateTimeOffset now, CancellationToken ct)
    {
        DateTimeOffset from = now - TimeSpan.FromSeconds(Config.ThreatWindowSeconds);
        var nodes = new HashSet<uint>(_culprits.Where(kv => kv.Value > from).Select(kv => kv.Key));
        foreach (var untrusted in await _store.NodeTrust.ListUntrustedAsync(ct).ConfigureAwait(false))
        {
            nodes.Add(untrusted.NodeId);
        }

        return nodes.Count;
    }

    private async Task DemandRotationsAsync(RiskLevel level, CancellationToken ct)
    {
        try
        {
            foreach (var schedule in await _store.RotationSchedules.ListAsync(ct).ConfigureAwait(false))
            {
                await Rotator!.DemandAsync(schedule.KeyId, $"risk level rose to {RiskLevels.Name(level)}", ct).ConfigureAwait(false);
            }
        }
        catch (StorageException)
        {
            // The level change stands; the scheduled rotations still run on their own schedule.
        }
    }

    private Task AuditAsync(string actor, string action, string decision, string result) =>
        _store.Audit.AppendAsync(new AuditEntryInput(actor, action, null, SHA256.HashData(Encoding.UTF8.GetBytes(action + " " + result)), decision, result), CancellationToken.None);

    /// <summary>A level name read back from the store; anything unknown is read as lockdown (fail closed).</summary>
    private static RiskLevel ParseLevel(string name) => RiskLevels.TryParse(name, out RiskLevel level) ? level : RiskLevel.Lockdown;

    private static RiskState ToState(StoredRiskState s) => new(ParseLevel(s.Level), s.Since, s.Reasons, s.LastDemandedAt);

    private static StoredRiskState ToStored(RiskState s, RiskLevel manual, string? by, string? reason, DateTimeOffset? at) =>
        new(RiskLevels.Name(s.Level), s.Since, [.. s.Reasons.Take(64)], s.LastDemandedAt, RiskLevels.Name(manual), by, reason, at, 0);

    private static string Shorten(string text) => text.Length > 250 ? text[..247] + "..." : text;
}
