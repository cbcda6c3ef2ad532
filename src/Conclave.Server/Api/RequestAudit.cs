using Conclave.Storage;
using Conclave.Storage.Audit;

namespace Conclave.Server.Api;

/// <summary>A velocity reservation made with a request's audit entries (<see cref="RequestAudit.FlushReservingAsync"/>):
/// its id, and the commit that makes it and the entries durable (faults with the 503 audit-unavailable problem if it failed).</summary>
public sealed record HeldReservation(string Id, Task Durable);

/// <summary>Marks a signing route whose audit entries before its first effect share one commit (see <see cref="RequestAudit"/>).</summary>
public sealed class AuditOneCommit;

/// <summary>
/// The audit entries one signing request writes before anything of it leaves the server, committed together: the
/// intent ("accepted"), the policy decision that allowed it, and the coordinator's round entry that must be durable
/// before any node is asked for a share. Written one after another they cost one fsync each in sequence (issue 18:
/// three of them before the first node step); held here and flushed with the round entry, or when the response starts,
/// they cost one. Nothing is weakened by holding them: each still becomes durable before the effect it must precede —
/// the nodes' shares (<see cref="FlushAsync(AuditEntryInput)"/> before the round), the response's first byte
/// (<see cref="FlushAsync()"/> from the middleware and <see cref="AuditTrail.RequireIntentAsync"/>) — and a request that
/// fails first still writes them before its error answer. Flushes keep their order in the log (one writer, in queue
/// order), and each waits for every earlier flush of the request.
/// </summary>
public sealed class RequestAudit
{
    private static readonly AsyncLocal<RequestAudit?> Scope = new();

    private readonly AuditGate _gate;
    private readonly CancellationToken _waitToken;
    private readonly List<AuditEntryInput> _pending = [];
    private readonly TaskCompletionSource<AuditEntry> _intent = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _flushed = Task.CompletedTask;
    private bool _intentWritten;

    internal RequestAudit(AuditGate gate, AuditEntryInput intent, CancellationToken waitToken)
    {
        _gate = gate;
        _waitToken = waitToken;
        _pending.Add(intent);
        _intent.Task.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default); // observed even when nobody awaits it
    }

    /// <summary>The request being handled on this flow, if its route is marked <see cref="AuditOneCommit"/>.</summary>
    public static RequestAudit? Current
    {
        get => Scope.Value;
        internal set => Scope.Value = value;
    }

    /// <summary>The intent entry, once durable; faults with the 503 audit-unavailable problem if its commit failed.</summary>
    public Task<AuditEntry> Intent => _intent.Task;

    /// <summary>Holds an entry until the next flush (the request's next effect or its response).</summary>
    public void Defer(AuditEntryInput entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_pending)
        {
            _pending.Add(entry);
        }
    }

    /// <summary>Commits everything held, in one commit, and waits until it and every earlier flush are durable.</summary>
    public Task FlushAsync() => FlushCoreAsync(null);

    /// <summary>Commits everything held followed by <paramref name="entry"/>, in one commit; returns <paramref name="entry"/> as written.</summary>
    public async Task<AuditEntry> FlushAsync(AuditEntryInput entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        IReadOnlyList<AuditEntry> written = await FlushCoreAsync(entry).ConfigureAwait(false);
        return written[^1];
    }

    private async Task<IReadOnlyList<AuditEntry>> FlushCoreAsync(AuditEntryInput? entry)
    {
        Task earlier;
        Task<IReadOnlyList<AuditEntry>>? mine = null;
        bool carriesIntent = false;
        lock (_pending)
        {
            if (entry is not null)
            {
                _pending.Add(entry);
            }

            earlier = _flushed;
            if (_pending.Count > 0)
            {
                AuditEntryInput[] batch = [.. _pending];
                _pending.Clear();
                carriesIntent = !_intentWritten;
                _intentWritten = true;
                mine = AppendAsync(batch);
                _flushed = Task.WhenAll(earlier, mine);
            }
        }

        if (carriesIntent)
        {
            _ = CompleteIntentAsync(mine!);
        }

        await earlier.ConfigureAwait(false);
        return mine is null ? [] : await mine.ConfigureAwait(false);
    }

    /// <summary>
    /// Starts committing everything held now, without waiting: for a request whose next step needs nothing durable and
    /// releases nothing (a signature made in this process), so the step runs while the commit's flush does. The request's
    /// next flush (<see cref="AuditTrail.RequireIntentAsync"/> before the response) still waits for this one.
    /// </summary>
    public void StartFlush() => _ = FlushCoreAsync(null).ContinueWith(static t => _ = t.Exception, CancellationToken.None,
        TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default); // its failure is the next flush's

    /// <summary>
    /// Commits everything held followed by <paramref name="entries"/> together with a velocity reservation, in one commit
    /// (a limited request's intent, allow decision and the limit it spends: one fsync, not two). Returns as soon as the
    /// caps were checked, while the commit is still being made: the reservation, whose <see cref="HeldReservation.Durable"/>
    /// completes when it and the entries are durable (or faults with the 503 audit-unavailable problem, and then neither
    /// was written), so the caller can make its signature during the flush. Nothing may leave the server on the strength
    /// of it before then: every later flush of the request — the round entry before any node is asked, the response
    /// (<see cref="AuditTrail.RequireIntentAsync"/>) — waits for it. Null when a cap would be exceeded: then nothing is
    /// written and what was held stays held (the caller records the denial next, with the intent).
    /// </summary>
    public async Task<HeldReservation?> FlushReservingAsync(IReadOnlyList<AuditEntryInput> entries, IReadOnlyList<Conclave.Storage.Policy.CounterReservation> reservations, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(reservations);
        AuditEntryInput[] held;
        Task earlier;
        bool carriesIntent;
        Task<(string ReservationId, IReadOnlyList<AuditEntry> Entries)?> mine;
        var decided = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pending)
        {
            held = [.. _pending];
            _pending.Clear();
            earlier = _flushed;
            carriesIntent = !_intentWritten;
            _intentWritten = true;
            mine = ReserveAndAppendAsync([.. held, .. entries], reservations, now, id => decided.TrySetResult(id));
            _flushed = Task.WhenAll(earlier, mine);
        }

        _ = FinishReservingAsync(mine, decided, carriesIntent);
        string? reservationId = await decided.Task.ConfigureAwait(false); // throws when the commit failed before the caps were checked
        if (reservationId is null)
        {
            lock (_pending)
            {
                _pending.InsertRange(0, held);
                _intentWritten &= !carriesIntent;
            }
        }

        await earlier.ConfigureAwait(false);
        return reservationId is null ? null : new HeldReservation(reservationId, mine);
    }

    /// <summary>
    /// The commit of a <see cref="FlushReservingAsync"/>: completes the intent when the commit carried it (its entry, or
    /// the commit's failure), and the caps' outcome when the commit failed before they were checked.
    /// </summary>
    private async Task FinishReservingAsync(Task<(string ReservationId, IReadOnlyList<AuditEntry> Entries)?> commit, TaskCompletionSource<string?> decided, bool carriesIntent)
    {
        try
        {
            if (await commit.ConfigureAwait(false) is { } done)
            {
                decided.TrySetResult(done.ReservationId);
                if (carriesIntent)
                {
                    _intent.TrySetResult(done.Entries[0]);
                }
            }
            else
            {
                decided.TrySetResult(null);
            }
        }
        catch (Exception e)
        {
            // A refused reservation put the intent back with what was held: the next flush carries it.
            bool refused = decided.Task.IsCompletedSuccessfully && decided.Task.Result is null;
            decided.TrySetException(e);
            if (carriesIntent && !refused)
            {
                _intent.TrySetException(e);
            }
        }
    }

    private async Task<(string ReservationId, IReadOnlyList<AuditEntry> Entries)?> ReserveAndAppendAsync(AuditEntryInput[] batch,
        IReadOnlyList<Conclave.Storage.Policy.CounterReservation> reservations, DateTimeOffset now, Action<string?> decided)
    {
        try
        {
            return await _gate.ReserveAndAppendAsync(reservations, now, batch, decided, _waitToken).ConfigureAwait(false);
        }
        catch (StorageException e)
        {
            throw ApiMiddleware.AuditUnavailable(e);
        }
    }

    private async Task<IReadOnlyList<AuditEntry>> AppendAsync(AuditEntryInput[] batch)
    {
        try
        {
            return await _gate.AppendAllAsync(batch, _waitToken).ConfigureAwait(false);
        }
        catch (StorageException e)
        {
            throw ApiMiddleware.AuditUnavailable(e);
        }
    }

    private async Task CompleteIntentAsync(Task<IReadOnlyList<AuditEntry>> batch)
    {
        try
        {
            _intent.TrySetResult((await batch.ConfigureAwait(false))[0]);
        }
        catch (OperationCanceledException)
        {
            _intent.TrySetCanceled();
        }
        catch (Exception e)
        {
            _intent.TrySetException(e);
        }
    }
}
