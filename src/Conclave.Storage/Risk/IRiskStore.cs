namespace Conclave.Storage.Risk;

/// <summary>
/// The venue's risk level as stored (docs/POLICY.md "Risk levels"): the level in force (a level name: normal, elevated,
/// stressed, lockdown), since when, why, when the signals last demanded it (the cool-down counts from there), and the
/// manual floor an operator or risk system set (<c>PUT /v1/risk</c>) with who set it, why and when.
/// <see cref="Version"/> grows by one with every write.
/// </summary>
public sealed record StoredRiskState(
    string Level,
    DateTimeOffset Since,
    IReadOnlyList<string> Reasons,
    DateTimeOffset LastDemandedAt,
    string ManualLevel,
    string? ManualBy,
    string? ManualReason,
    DateTimeOffset? ManualAt,
    long Version);

/// <summary>Threat events (refused, denied or badly signed requests) counted in the second that starts at <paramref name="At"/>.</summary>
public readonly record struct StoredThreatBucket(DateTimeOffset At, long Count);

/// <summary>One price observation of a price source (an instrument such as ETH-USD).</summary>
public readonly record struct StoredPriceSample(string Source, DateTimeOffset At, decimal Price);

/// <summary>
/// The risk level and its inputs, shared by every server replica on the store (issue 16 "Risk levels"): one state row
/// changed only under its row lock (<see cref="UpdateAsync"/>), price samples per source, and the approvers' votes to
/// leave a lockdown (one per approver and lockdown). Not part of backups (like the policy counters: a restore never
/// brings an old level or old prices back; a restored server starts from normal and recomputes).
/// </summary>
public interface IRiskStore
{
    /// <summary>The stored state, or null before the first write.</summary>
    Task<StoredRiskState?> GetAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads the state under its row lock (so replicas change it one at a time), passes it to
    /// <paramref name="change"/> and writes what that returns (its <c>Version</c> is ignored: the stored one plus one).
    /// A null return writes nothing. Returns the state before and after (equal when nothing was written).
    /// </summary>
    Task<(StoredRiskState? Before, StoredRiskState? After)> UpdateAsync(Func<StoredRiskState?, StoredRiskState?> change, CancellationToken cancellationToken = default);

    /// <summary>Adds samples (positive prices, sources of 1-64 characters) and drops every sample older than <paramref name="pruneBefore"/>.</summary>
    Task AddPricesAsync(IReadOnlyList<StoredPriceSample> samples, DateTimeOffset pruneBefore, CancellationToken cancellationToken = default);

    /// <summary>The samples taken after <paramref name="from"/>, plus the latest sample of every source (however old), ordered by source and time.</summary>
    Task<IReadOnlyList<StoredPriceSample>> ReadPricesAsync(DateTimeOffset from, CancellationToken cancellationToken = default);

    /// <summary>
    /// Adds threat events to the shared count: each bucket's count is added to the stored count of its second (every
    /// replica adds to the same rows), and every second before <paramref name="pruneBefore"/> is dropped, so the table
    /// holds at most one row per second of the window kept.
    /// </summary>
    Task AddThreatsAsync(IReadOnlyList<StoredThreatBucket> buckets, DateTimeOffset pruneBefore, CancellationToken cancellationToken = default);

    /// <summary>The threat counts of the seconds after <paramref name="from"/>, oldest first.</summary>
    Task<IReadOnlyList<StoredThreatBucket>> ReadThreatsAsync(DateTimeOffset from, CancellationToken cancellationToken = default);

    /// <summary>Records an approver's vote to leave the lockdown that began at <paramref name="lockdownSince"/>; false if they already voted.</summary>
    Task<bool> AddLockdownVoteAsync(DateTimeOffset lockdownSince, string approver, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>The approvers who voted to leave the lockdown that began at <paramref name="lockdownSince"/>, by name.</summary>
    Task<IReadOnlyList<string>> LockdownVotesAsync(DateTimeOffset lockdownSince, CancellationToken cancellationToken = default);
}
