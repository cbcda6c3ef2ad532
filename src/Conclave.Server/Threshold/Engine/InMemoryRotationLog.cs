using Conclave.Crypto.Memory;
using Conclave.Storage;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;

namespace Conclave.Server.Coordinator;

/// <summary>
/// The rotation log of a coordinator that has no store of its own (a test or a tool driving nodes directly): the same
/// rules as the store's log (one unfinished run per key, state transitions checked), kept in memory, so it survives
/// nothing. The server always uses its store's log (<see cref="IConclaveStore.Rotations"/>), which is durable.
/// </summary>
public sealed class InMemoryRotationLog : IRotationLog
{
    private readonly Dictionary<string, RotationRun> _runs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _active = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly Dictionary<string, byte[]> _transcripts = new(StringComparer.Ordinal);

    public Task<RotationRun> BeginAsync(NewRotationRun run, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        var r = new RotationRun(run.RunId, run.KeyId, run.Kind, run.FromVersion, run.ToVersion, RotationState.Started, run.Owner, now + run.Lease,
            run.Parameters, null, null, now, now);
        lock (_gate)
        {
            if (_active.TryGetValue(run.KeyId, out string? other))
            {
                throw new StorageException(StorageErrorKind.Conflict, $"key '{run.KeyId}' has an unfinished rotation run {other}");
            }

            if (!_runs.TryAdd(run.RunId, r))
            {
                throw new StorageException(StorageErrorKind.Duplicate, $"rotation run '{run.RunId}' already exists");
            }

            _active[run.KeyId] = run.RunId;
        }

        return Task.FromResult(r);
    }

    public Task<RotationRun?> GetAsync(string runId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_runs.GetValueOrDefault(runId));
        }
    }

    public Task<RotationRun?> GetActiveAsync(string keyId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_active.TryGetValue(keyId, out string? id) ? _runs[id] : null);
        }
    }

    public Task<IReadOnlyList<RotationRun>> ListUnfinishedAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<RotationRun>>([.. _active.Values.Select(id => _runs[id]).OrderBy(r => r.CreatedAt)]);
        }
    }

    public Task<IReadOnlyList<RotationRun>> ListForKeyAsync(string keyId, int limit, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<RotationRun>>([.. _runs.Values.Where(r => r.KeyId == keyId).OrderByDescending(r => r.CreatedAt).Take(limit)]);
        }
    }

    public Task<RotationRun> TransitionAsync(string runId, RotationState expected, RotationState next, byte[]? result = null, string? error = null,
        CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(Transition(runId, expected, next, result, error));
        }
    }

    private RotationRun Transition(string runId, RotationState expected, RotationState next, byte[]? result, string? error)
    {
        if (!_runs.TryGetValue(runId, out RotationRun? r) || r.State != expected)
        {
            throw new StorageException(StorageErrorKind.Conflict, $"rotation run '{runId}' is not {expected.ToString().ToLowerInvariant()}");
        }

        r = r with { State = next, Result = result ?? r.Result, Error = error ?? r.Error, UpdatedAt = DateTimeOffset.UtcNow };
        _runs[runId] = r;
        if (r.IsFinished)
        {
            _active.Remove(r.KeyId);
        }

        return r;
    }

    /// <summary>
    /// Retires a committed run. The entry is dropped: a coordinator without a store (a test or a tool) keeps no audit log,
    /// as it kept none before the entry moved into the retire.
    /// </summary>
    public Task<RotationRun> RetireAsync(string runId, Conclave.Storage.Audit.AuditEntryInput? audit = null, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(Transition(runId, RotationState.Committed, RotationState.Retired, null, null));
        }
    }

    public Task<bool> TryLeaseAsync(string runId, string owner, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (!_runs.TryGetValue(runId, out RotationRun? r) || r.IsFinished || (r.Owner != owner && r.LeaseUntil > DateTimeOffset.UtcNow))
            {
                return Task.FromResult(false);
            }

            _runs[runId] = r with { Owner = owner, LeaseUntil = DateTimeOffset.UtcNow + lease };
            return Task.FromResult(true);
        }
    }

    public Task<RotationRun> CommitKeyAsync(string runId, KeyRotation rotation, SecretBuffer? material, NewKey? create = null, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_runs.TryGetValue(runId, out RotationRun? r) && r.State == RotationState.Committed
                ? r
                : Transition(runId, RotationState.Prepared, RotationState.Committed, null, null));
        }
    }

    public Task SaveTranscriptAsync(string runId, byte[] transcript, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transcript);
        lock (_gate)
        {
            if (!_runs.ContainsKey(runId) || !_transcripts.TryAdd(runId, [.. transcript]))
            {
                throw new StorageException(StorageErrorKind.Duplicate, $"rotation run '{runId}' is unknown or has a transcript");
            }
        }

        return Task.CompletedTask;
    }

    public Task<byte[]?> GetTranscriptAsync(string keyId, int version, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            RotationRun? run = _runs.Values.FirstOrDefault(r => r.KeyId == keyId && r.ToVersion == version && r.Kind != RotationKind.Repair && r.State is RotationState.Committed or RotationState.Retired);
            return Task.FromResult(run is not null && _transcripts.TryGetValue(run.RunId, out byte[]? t) ? [.. t] : (byte[]?)null);
        }
    }

    public Task<byte[]?> GetRunTranscriptAsync(string runId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return Task.FromResult(_runs.TryGetValue(runId, out RotationRun? run) && run.State is RotationState.Committed or RotationState.Retired
                && _transcripts.TryGetValue(runId, out byte[]? t) ? [.. t] : (byte[]?)null);
        }
    }
}
