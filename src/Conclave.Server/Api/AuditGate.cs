using Conclave.Storage;
using Conclave.Storage.Audit;

namespace Conclave.Server.Api;

/// <summary>
/// Bounds the audit appends the API has in flight (queued for the log's group commit and not yet durable). A request
/// whose entry finds the bound reached waits for a slot — backpressure onto the callers, whose request timeout still
/// applies — instead of growing the queue without limit. Refused requests do not come through here: they are counted
/// by <see cref="DenialAudit"/>.
/// </summary>
public sealed class AuditGate(IConclaveStore store, int maxInFlight) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(maxInFlight, maxInFlight);

    /// <summary>Appends once a slot is free; <paramref name="waitToken"/> cancels only the wait for a slot, never a queued append.</summary>
    public async Task<AuditEntry> AppendAsync(AuditEntryInput entry, CancellationToken waitToken)
    {
        await _slots.WaitAsync(waitToken).ConfigureAwait(false);
        try
        {
            return await store.Audit.AppendAsync(entry, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>Appends entries in one commit (<see cref="IAuditLog.AppendAllAsync"/>) once a slot is free.</summary>
    public async Task<IReadOnlyList<AuditEntry>> AppendAllAsync(IReadOnlyList<AuditEntryInput> entries, CancellationToken waitToken)
    {
        await _slots.WaitAsync(waitToken).ConfigureAwait(false);
        try
        {
            return await store.Audit.AppendAllAsync(entries, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// Reserves velocity counters and appends entries in one commit (<see cref="Conclave.Storage.Policy.IPolicyCounterStore.TryReserveAndAppendAsync"/>)
    /// once a slot is free; null when a cap would be exceeded (nothing written). <paramref name="decided"/> is told the
    /// caps' outcome before the commit (see that method).
    /// </summary>
    public async Task<(string ReservationId, IReadOnlyList<AuditEntry> Entries)?> ReserveAndAppendAsync(IReadOnlyList<Conclave.Storage.Policy.CounterReservation> reservations,
        DateTimeOffset now, IReadOnlyList<AuditEntryInput> entries, Action<string?> decided, CancellationToken waitToken)
    {
        await _slots.WaitAsync(waitToken).ConfigureAwait(false);
        try
        {
            return await store.PolicyCounters.TryReserveAndAppendAsync(reservations, now, entries, decided, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>Appends an entry nothing waits for (<see cref="IAuditLog.AppendLazilyAsync"/>) once a slot is free.</summary>
    public async Task<AuditEntry> AppendLazilyAsync(AuditEntryInput entry, CancellationToken waitToken)
    {
        await _slots.WaitAsync(waitToken).ConfigureAwait(false);
        try
        {
            return await store.Audit.AppendLazilyAsync(entry, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _slots.Release();
        }
    }

    public void Dispose() => _slots.Dispose();
}
