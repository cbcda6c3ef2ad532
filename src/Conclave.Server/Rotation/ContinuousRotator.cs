using Microsoft.Extensions.Logging;
using System.Security.Cryptography;
using System.Text;
using Conclave.Server.Api;
using Conclave.Server.Coordinator;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Rotation;

/// <summary>
/// Continuous rotation (docs/ROTATION.md "Continuous rotation"): refreshes each scheduled threshold key (FROST or
/// ecdsa-dkls23) when it is due —
/// its interval elapsed (plus a random jitter of up to a tenth of the interval, so keys scheduled together spread
/// out), it made its N signatures, or a risk escalation demanded it (<see cref="DemandAsync"/>). One pass at a time,
/// keys one after another, and a key with an unfinished run is left alone, so scheduled runs never overlap (each is an
/// ordinary crash-safe rotation run; the store's one-run-per-key rule also holds across replicas). Every outcome is
/// audited (<c>rotation.scheduled</c>, allow or deny) and kept with the schedule for /metrics. The clock is injected.
/// </summary>
public sealed class ContinuousRotator
{
    private readonly KeyService _keys;
    private readonly TimeProvider _clock;
    private readonly SemaphoreSlim _pass = new(1, 1);

    public ContinuousRotator(KeyService keys, TimeProvider? clock = null, TimeSpan? tick = null)
    {
        _keys = keys;
        _clock = clock ?? TimeProvider.System;
        Tick = tick ?? TimeSpan.FromSeconds(2);
    }

    /// <summary>How often the background loop looks for due keys.</summary>
    public TimeSpan Tick { get; }

    /// <summary>Longest wait before a failed scheduled rotation is tried again.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromMinutes(1);

    private IRotationSchedules Schedules => _keys.Store.RotationSchedules;

    /// <summary>Sets a key's schedule (a FROST or ecdsa-dkls23 key; at least one trigger). The first interval starts now.</summary>
    public async Task<RotationSchedule> SetAsync(KeyRecord key, TimeSpan? interval, long? afterSignatures, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!IsThreshold(key.Scheme))
        {
            throw new ApiException(ProblemTypes.NotThreshold, $"rotation schedules apply to threshold keys; {key.Name} is a single {key.Scheme} key");
        }

        if (interval is null && afterSignatures is null)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "give intervalSeconds, afterSignatures or both");
        }

        if (interval < TimeSpan.FromSeconds(1) || interval > TimeSpan.FromDays(3650) || afterSignatures is < 1 or > 1_000_000_000_000)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "intervalSeconds must be 1 to 315360000 and afterSignatures 1 to 10^12");
        }

        RotationSchedule s = await Schedules.SetAsync(key.Id, interval, afterSignatures, interval is { } i ? _clock.GetUtcNow() + i + Jitter(i) : null, ct).ConfigureAwait(false);
        await AuditAsync("rotation.schedule", key.Id, "allow", $"every {(interval is { } x ? $"{x.TotalSeconds:0} s" : "-")}, after {(afterSignatures is { } n ? $"{n} signatures" : "-")}").ConfigureAwait(false);
        return s;
    }

    /// <summary>Whether a scheme's keys can be scheduled: FROST and ecdsa-dkls23 keys, which refresh over the cluster.</summary>
    public static bool IsThreshold(string scheme) => FrostCiphersuite.TryGet(scheme, out _) || scheme == DklsScheme.Name;

    /// <summary>
    /// On demand (the hook for risk escalation): the key's next refresh is due now. False when the key has no schedule
    /// (a schedule is what says a key may be rotated without an operator).
    /// </summary>
    public async Task<bool> DemandAsync(string keyId, string reason, CancellationToken ct)
    {
        bool ok = await Schedules.DemandAsync(keyId, reason, _clock.GetUtcNow(), ct).ConfigureAwait(false);
        if (ok)
        {
            await AuditAsync("rotation.demand", keyId, "allow", Shorten(reason)).ConfigureAwait(false);
        }

        return ok;
    }

    /// <summary>
    /// The background loop: a pass every <see cref="Tick"/> until the server stops. Never throws and never stops before:
    /// a pass that fails is logged (Hosting.BackgroundLog) and the next one tries again.
    /// </summary>
    public async Task RunAsync(CancellationToken stopping, ILogger? log = null)
    {
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                await Hosting.BackgroundLog.RunPassAsync("continuous rotation", () => PassAsync(stopping),
                    log ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, stopping).ConfigureAwait(false);
                await Task.Delay(Tick, _clock, stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One pass: counts signatures, then refreshes every due key, one after another. Returns the keys refreshed.</summary>
    public async Task<int> PassAsync(CancellationToken ct)
    {
        await _pass.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            foreach ((string keyId, long n) in _keys.Frost.TakeSignatureCounts().Concat(_keys.Dkls.TakeSignatureCounts()))
            {
                await Schedules.AddSignaturesAsync(keyId, n, ct).ConfigureAwait(false);
            }

            int rotated = 0;
            foreach (RotationSchedule listed in await Schedules.ListAsync(ct).ConfigureAwait(false))
            {
                // Read again right before acting: another replica may have rotated it meanwhile.
                if (await Schedules.GetAsync(listed.KeyId, ct).ConfigureAwait(false) is not { } s || Why(s) is not { } why
                    || await _keys.Store.Rotations.GetActiveAsync(s.KeyId, ct).ConfigureAwait(false) is not null)
                {
                    continue;
                }

                rotated += await RotateAsync(s, why, ct).ConfigureAwait(false) ? 1 : 0;
            }

            return rotated;
        }
        finally
        {
            _pass.Release();
        }
    }

    /// <summary>Why the key is due now, or null.</summary>
    private string? Why(RotationSchedule s)
    {
        DateTimeOffset now = _clock.GetUtcNow();
        if (s.DemandReason is { } demand && s.NextDue <= now)
        {
            return "on demand: " + demand;
        }

        if (s.AfterSignatures is { } n && s.Signatures >= n)
        {
            return $"{s.Signatures} signatures (schedule: after {n})";
        }

        return s.NextDue <= now ? (s.Failures > 0 ? "retry after a failure" : "interval elapsed") : null;
    }

    private async Task<bool> RotateAsync(RotationSchedule s, string why, CancellationToken ct)
    {
        KeyRecord? key = await _keys.Store.Keys.GetAsync(s.KeyId, ct).ConfigureAwait(false);
        DateTimeOffset now = _clock.GetUtcNow();
        if (key is null || key.State != KeyState.Active)
        {
            await FailAsync(s, now, key is null ? "the key no longer exists" : $"the key is {key.State.ToString().ToLowerInvariant()}").ConfigureAwait(false);
            return false;
        }

        try
        {
            int after = await _keys.RefreshToEndAsync(key, ct).ConfigureAwait(false);
            DateTimeOffset done = _clock.GetUtcNow();
            await Schedules.RecordRotationAsync(s.KeyId, done, s.Interval is { } i ? done + i + Jitter(i) : null, CancellationToken.None).ConfigureAwait(false);
            await AuditAsync("rotation.scheduled", s.KeyId, "allow", $"version {key.Version} -> {after}: {Shorten(why)}").ConfigureAwait(false);
            return true;
        }
        catch (ApiException e) when (e.Problem.Type == ProblemTypes.RotationInProgress)
        {
            return false; // another run of the key (a replica's, an operator's): it is not due twice
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await FailAsync(s, now, e is ApiException a ? a.Problem.Detail : e.Message).ConfigureAwait(false);
            return false;
        }
    }

    private async Task FailAsync(RotationSchedule s, DateTimeOffset now, string error)
    {
        // Back off: 2^failures seconds, at most MaxRetryDelay and at most the interval.
        double seconds = Math.Min(Math.Pow(2, Math.Min(s.Failures + 1, 20)), MaxRetryDelay.TotalSeconds);
        if (s.Interval is { } i)
        {
            seconds = Math.Min(seconds, i.TotalSeconds);
        }

        await Schedules.RecordFailureAsync(s.KeyId, Shorten(error), now + TimeSpan.FromSeconds(seconds), CancellationToken.None).ConfigureAwait(false);
        await AuditAsync("rotation.scheduled", s.KeyId, "deny", Shorten(error)).ConfigureAwait(false);
    }

    /// <summary>A random delay of up to a tenth of the interval (scheduling only; not a secret).</summary>
    private static TimeSpan Jitter(TimeSpan interval)
    {
        long maxMs = (long)(interval.TotalMilliseconds / 10);
        return maxMs <= 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(RandomNumberGenerator.GetInt32((int)Math.Min(maxMs, int.MaxValue - 1) + 1));
    }

    private Task AuditAsync(string action, string keyId, string decision, string result) =>
        _keys.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", action, keyId, SHA256.HashData(Encoding.UTF8.GetBytes(action + " " + keyId)), decision, result), CancellationToken.None);

    private static string Shorten(string text) => text.Length > 200 ? text[..200] : text;
}
