namespace Conclave.Server.Api;

/// <summary>
/// /readyz is open to anyone, and each check attests every signer node over mutual TLS. The answer is computed at most
/// once per <c>ttl</c>: callers within that time (and callers arriving while a check runs) share it, so a flood of
/// readiness probes costs one attestation per second.
/// </summary>
public sealed class ReadinessCache(Func<CancellationToken, Task<ReadyResponse>> check, TimeSpan ttl, TimeProvider? clock = null) : IDisposable
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile Entry? _last;

    public async Task<ReadyResponse> GetAsync(CancellationToken ct)
    {
        if (Fresh() is { } cached)
        {
            return cached;
        }

        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Fresh() is { } again)
            {
                return again;
            }

            // Not the caller's token: one caller going away must not fail the check the others wait for.
            ReadyResponse r = await check(CancellationToken.None).ConfigureAwait(false);
            _last = new Entry(r, _clock.GetTimestamp());
            return r;
        }
        finally
        {
            _gate.Release();
        }
    }

    private ReadyResponse? Fresh() => _last is { } e && _clock.GetElapsedTime(e.At) < ttl ? e.Response : null;

    private sealed record Entry(ReadyResponse Response, long At);

    public void Dispose() => _gate.Dispose();
}
