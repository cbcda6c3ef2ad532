using System.Text.Json;

namespace Conclave.Client;

/// <summary>Requests held for approval (docs/API.md "Approvals"): follow one until its approvers decide.</summary>
public sealed partial class ConclaveClient
{
    /// <summary>A held request as the server shows it now (<c>GET /v1/requests/{id}</c>).</summary>
    public Task<RequestStatus> GetRequestAsync(string requestId, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(requestId);
        return GetAsync($"v1/requests/{Esc(requestId)}", J.RequestStatus, ct);
    }

    /// <summary>
    /// Polls a request held by <see cref="SignAsync"/> (every <paramref name="pollInterval"/>, default one second) until it
    /// is decided, and returns its signature once executed. A request rejected, expired, or whose signing failed after
    /// the approval throws <see cref="ConclaveApiException"/> naming its status; <paramref name="ct"/> stops the wait
    /// (the request stays held on the server).
    /// </summary>
    public async Task<SignResult> WaitForSignatureAsync(string requestId, TimeSpan? pollInterval = null, CancellationToken ct = default)
    {
        TimeSpan every = pollInterval ?? TimeSpan.FromSeconds(1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(every, TimeSpan.Zero, nameof(pollInterval));
        while (true)
        {
            RequestStatus r = await GetRequestAsync(requestId, ct).ConfigureAwait(false);
            switch (r.Status)
            {
                case "pending" or "approved":
                    await Task.Delay(every, ct).ConfigureAwait(false);
                    continue;
                case "executed" when r.Result is { ValueKind: JsonValueKind.Object } result && !result.TryGetProperty("error", out _):
                    return result.Deserialize(J.SignResult) ?? throw new ConclaveApiException($"request {requestId} was executed without a signature");
                case "executed":
                    throw new ConclaveApiException($"request {requestId} was approved but signing failed" + ErrorDetail(r.Result));
                default:
                    throw new ConclaveApiException($"request {requestId} is {r.Status}: nothing was signed");
            }
        }
    }

    private static string ErrorDetail(JsonElement? result) =>
        result is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("error", out JsonElement e) && e.ValueKind == JsonValueKind.Object
            && e.TryGetProperty("detail", out JsonElement d) && d.ValueKind == JsonValueKind.String ? ": " + d.GetString() : "";
}
