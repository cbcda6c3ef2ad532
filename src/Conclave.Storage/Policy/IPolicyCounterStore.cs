namespace Conclave.Storage.Policy;

/// <summary>
/// One amount to add to a velocity counter and the caps it must stay within (docs/POLICY.md "Semantics"): the server
/// copies these from a Conclave.Policy decision. Amounts are native units and USD; a null cap is not checked.
/// </summary>
public sealed record CounterReservation(string CounterKey, long WindowSeconds, decimal Native, decimal Usd, long Count, decimal? MaxNative, decimal? MaxUsd, long? MaxCount);

/// <summary>What a counter holds inside a window.</summary>
public readonly record struct CounterTotals(decimal Native, decimal Usd, long Count);

/// <summary>
/// Durable velocity counters for policy limits. <see cref="TryReserveAsync"/> is atomic across every process using the
/// store (server replicas on one PostgreSQL): each counter has a lock row taken in key order for the transaction, the
/// totals inside the window are re-read under it, and either every reservation of the call is written or none.
/// Counters are in backups: a restore brings back the spending up to the backup.
/// </summary>
public interface IPolicyCounterStore
{
    /// <summary>Totals of the entries under <paramref name="counterKey"/> in (now - window, now].</summary>
    Task<CounterTotals> ReadAsync(string counterKey, long windowSeconds, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Adds all reservations if each stays within its caps; returns the reservation id, or null (nothing written).</summary>
    Task<string?> TryReserveAsync(IReadOnlyList<CounterReservation> reservations, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reserves as <see cref="TryReserveAsync"/> and appends <paramref name="entries"/> to the audit log in the same
    /// transaction, one commit for both (a signing request's intent and allow decision with the limit it spends): returns
    /// the reservation id and the entries once durable, or null when a cap would be exceeded — then neither the
    /// reservation nor any entry is written. A failed commit fails the call and writes neither.
    /// </summary>
    Task<(string ReservationId, IReadOnlyList<Audit.AuditEntry> Entries)?> TryReserveAndAppendAsync(IReadOnlyList<CounterReservation> reservations, DateTimeOffset now,
        IReadOnlyList<Audit.AuditEntryInput> entries, CancellationToken cancellationToken = default);

    /// <summary>
    /// As <see cref="TryReserveAndAppendAsync(IReadOnlyList{CounterReservation}, DateTimeOffset, IReadOnlyList{Audit.AuditEntryInput}, CancellationToken)"/>,
    /// and tells <paramref name="decided"/> the outcome of the caps as soon as they were checked, before the commit: the
    /// reservation id when they hold (the commit then writes the reservation and the entries, or the call fails and
    /// writes neither), null when a cap would be exceeded (nothing of it is written). Lets a caller start work that must
    /// not be released before the commit (a signature) while the commit's flush runs. <paramref name="decided"/> is
    /// called at most once (not at all when the transaction fails before the caps were checked), on the store's audit
    /// writer inside its transaction: it must return at once and must not throw.
    /// </summary>
    Task<(string ReservationId, IReadOnlyList<Audit.AuditEntry> Entries)?> TryReserveAndAppendAsync(IReadOnlyList<CounterReservation> reservations, DateTimeOffset now,
        IReadOnlyList<Audit.AuditEntryInput> entries, Action<string?> decided, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes a reservation (signing failed): its entries under <paramref name="counterKeys"/>, the counters it was made
    /// on (the <see cref="CounterReservation.CounterKey"/>s given to the call that returned <paramref name="reservationId"/>).
    /// An entry is found by the table's key (counter, time, id), the time read from the id, so no index on the id is kept.
    /// False if there was nothing to remove: another id, other counters, or an id made before migration 20.
    /// </summary>
    Task<bool> ReleaseAsync(string reservationId, IReadOnlyList<string> counterKeys, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes entries stamped at or before <paramref name="before"/>, about <paramref name="maxEntries"/> at most (entries
    /// stamped in the same millisecond as the last one are deleted with it), counter by counter, each counter's in
    /// transactions under its lock row: the counter's watermark first moves up to the last entry deleted and its running
    /// totals lose what it passes, so they stay the sum of the entries after the watermark. Returns how many were deleted.
    /// Decisions are unchanged only if no later reservation or read has a window starting before <paramref name="before"/>:
    /// the caller picks it behind the longest window any limit can have and the clock skew between replicas.
    /// </summary>
    Task<int> PruneAsync(DateTimeOffset before, int maxEntries, CancellationToken cancellationToken = default);
}
