using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Conclave.Client;

/// <summary>A failed API call: the server's problem (type URI, status, detail) or a transport-level failure.</summary>
public sealed class ConclaveApiException : Exception
{
    public ConclaveApiException() { }

    public ConclaveApiException(string message) : base(message) { }

    public ConclaveApiException(string message, Exception innerException) : base(message, innerException) { }

    public ConclaveApiException(Problem problem) : base(problem?.Detail) => Problem = problem;

    public Problem? Problem { get; }

    /// <summary>The stable problem type URI, for example https://conclave.dev/problems/unknown-key.</summary>
    public string Type => Problem?.Type ?? "about:blank";

    public int Status => Problem?.Status ?? 0;

    public string Detail => Problem?.Detail ?? Message;
}

/// <summary>
/// A signing request the server's policy holds for approval (HTTP 202): nothing was signed yet. <see cref="Held"/> names
/// the request; <see cref="ConclaveClient.WaitForSignatureAsync"/> waits for its approvers and returns the signature.
/// </summary>
public sealed class ConclaveRequestHeldException : Exception
{
    public ConclaveRequestHeldException() { }

    public ConclaveRequestHeldException(string message) : base(message) { }

    public ConclaveRequestHeldException(string message, Exception innerException) : base(message, innerException) { }

    public ConclaveRequestHeldException(HeldRequest held) : base($"the request is held for approval as {held?.RequestId} until {held?.ExpiresAt:O}") => Held = held;

    public HeldRequest? Held { get; }
}

/// <summary>
/// Typed async client for the Conclave REST API v1. Give it the server URL and the bearer token; every method throws
/// <see cref="ConclaveApiException"/> with the server's problem on an error response.
/// </summary>
public sealed partial class ConclaveClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;

    /// <summary>The signing key a client made by <see cref="ForAgentOwningKey"/> took; disposed with the client.</summary>
    private IDisposable? _ownedKey;

    public ConclaveClient(Uri baseAddress, string token, TimeSpan? timeout = null)
        : this(new HttpClient { BaseAddress = baseAddress, Timeout = timeout ?? TimeSpan.FromSeconds(100) }, token, ownsHttpClient: true)
    {
    }

    /// <summary>A client for the server at <paramref name="baseUrl"/> (for example "http://127.0.0.1:8080").</summary>
    public ConclaveClient(string baseUrl, string token, TimeSpan? timeout = null)
        : this(ParseBaseUrl(baseUrl), token, timeout)
    {
    }

    /// <summary>
    /// A client for an HTTPS server whose certificate chains to <paramref name="trustedRoot"/> (for example the development
    /// CA of <c>conclave up --tls</c>, its pki/ca.crt) rather than to the system's roots. The host name must still match.
    /// </summary>
    public ConclaveClient(Uri baseAddress, string token, System.Security.Cryptography.X509Certificates.X509Certificate2 trustedRoot, TimeSpan? timeout = null)
        : this(new HttpClient(TrustingHandler(trustedRoot)) { BaseAddress = baseAddress, Timeout = timeout ?? TimeSpan.FromSeconds(100) }, token, ownsHttpClient: true)
    {
    }

    private static SocketsHttpHandler TrustingHandler(System.Security.Cryptography.X509Certificates.X509Certificate2 root)
    {
        ArgumentNullException.ThrowIfNull(root);
        return new SocketsHttpHandler
        {
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    // Name mismatches and a missing certificate stay errors; only the chain is judged against the given root.
                    if (certificate is null || (errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors) != 0)
                    {
                        return false;
                    }

                    using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
                    chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(root);
                    chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
                    using var leaf = new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate);
                    return chain.Build(leaf);
                },
            },
        };
    }

    public ConclaveClient(HttpClient http, string token, bool ownsHttpClient = false)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentException.ThrowIfNullOrEmpty(token);
        _http = http;
        _ownsHttp = ownsHttpClient;
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    /// <summary>A client whose requests carry no token: for an <see cref="HttpClient"/> that authenticates them itself (<see cref="AgentSigningHandler"/>).</summary>
    private ConclaveClient(HttpClient http, bool ownsHttpClient)
    {
        _http = http;
        _ownsHttp = ownsHttpClient;
    }

    private static ClientJsonContext J => ClientJsonContext.Default;

    public Task<KeyInfo> CreateKeyAsync(CreateKeyRequest request, CancellationToken ct = default) => PostAsync("v1/keys", request, J.CreateKeyRequest, J.KeyInfo, ct);

    public async Task<IReadOnlyList<KeyInfo>> ListKeysAsync(CancellationToken ct = default) => (await GetAsync("v1/keys", J.KeyList, ct).ConfigureAwait(false)).Keys;

    public Task<KeyInfo> GetKeyAsync(string name, CancellationToken ct = default) => GetAsync($"v1/keys/{Esc(name)}", J.KeyInfo, ct);

    public Task<KeyVersions> GetKeyVersionsAsync(string name, CancellationToken ct = default) => GetAsync($"v1/keys/{Esc(name)}/versions", J.KeyVersions, ct);

    /// <summary>
    /// Signs through <c>POST /v1/keys/{name}/sign</c>. A request the policy holds for approval (HTTP 202) throws
    /// <see cref="ConclaveRequestHeldException"/> with the held request's id: wait for it with
    /// <see cref="WaitForSignatureAsync"/>.
    /// </summary>
    public async Task<SignResult> SignAsync(string name, SignRequest request, CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.PostAsJsonAsync(new Uri($"v1/keys/{Esc(name)}/sign", UriKind.Relative), request, J.SignRequest, ct).ConfigureAwait(false);
        if (r.StatusCode == System.Net.HttpStatusCode.Accepted)
        {
            throw new ConclaveRequestHeldException(await ReadAsync(r, J.HeldRequest, ct).ConfigureAwait(false));
        }

        return await ReadAsync(r, J.SignResult, ct).ConfigureAwait(false);
    }

    public Task<SignBatchResult> SignBatchAsync(string name, IReadOnlyList<SignRequest> items, CancellationToken ct = default) =>
        PostAsync($"v1/keys/{Esc(name)}/sign/batch", new SignBatchRequest(items), J.SignBatchRequest, J.SignBatchResult, ct);

    public Task<DeriveResult> DeriveAsync(string name, string path, CancellationToken ct = default) => PostAsync($"v1/keys/{Esc(name)}/derive", new DeriveRequest(path), J.DeriveRequest, J.DeriveResult, ct);

    /// <summary>
    /// Refreshes the shares of a threshold key. A run that outlives the server's request deadline answers 202; this
    /// method then polls the operation until the run has finished (<paramref name="progress"/> sees each state).
    /// </summary>
    public async Task<KeyInfo> RefreshAsync(string name, CancellationToken ct = default, IProgress<Operation>? progress = null)
    {
        using HttpResponseMessage r = await _http.PostAsync(new Uri($"v1/keys/{Esc(name)}/refresh", UriKind.Relative), null, ct).ConfigureAwait(false);
        return await KeyOrOperationAsync(r, progress, ct).ConfigureAwait(false);
    }

    /// <summary>Reshares a threshold key to a new threshold and committee; waits for the run like <see cref="RefreshAsync"/>.</summary>
    public async Task<KeyInfo> ReshareAsync(string name, int threshold, int participants, CancellationToken ct = default, IProgress<Operation>? progress = null)
    {
        using HttpResponseMessage r = await _http.PostAsJsonAsync(new Uri($"v1/keys/{Esc(name)}/reshare", UriKind.Relative),
            new ReshareRequest(threshold, participants), J.ReshareRequest, ct).ConfigureAwait(false);
        return await KeyOrOperationAsync(r, progress, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Rebuilds the lost share of signer node <paramref name="node"/> of a threshold key from healthy holders (same key,
    /// same version); waits for the run like <see cref="RefreshAsync"/>.
    /// </summary>
    public async Task<KeyInfo> RepairAsync(string name, int node, CancellationToken ct = default, IProgress<Operation>? progress = null)
    {
        using HttpResponseMessage r = await _http.PostAsJsonAsync(new Uri($"v1/keys/{Esc(name)}/repair", UriKind.Relative),
            new RepairRequest(node), J.RepairRequest, ct).ConfigureAwait(false);
        return await KeyOrOperationAsync(r, progress, ct).ConfigureAwait(false);
    }

    /// <summary>A rotation run by id (the operation a 202 answer named).</summary>
    public Task<Operation> GetOperationAsync(string id, CancellationToken ct = default) => GetAsync($"v1/operations/{Esc(id)}", J.Operation, ct);

    private async Task<KeyInfo> KeyOrOperationAsync(HttpResponseMessage r, IProgress<Operation>? progress, CancellationToken ct)
    {
        if (r.StatusCode != System.Net.HttpStatusCode.Accepted)
        {
            return await ReadAsync(r, J.KeyInfo, ct).ConfigureAwait(false);
        }

        Operation op = await ReadAsync(r, J.Operation, ct).ConfigureAwait(false);
        while (true)
        {
            progress?.Report(op);
            switch (op.State)
            {
                case "retired":
                case "committed" when op.Key is not null:
                    return op.Key ?? throw new ConclaveApiException($"operation {op.Id} finished without a key record");
                case "aborted":
                    throw new ConclaveApiException(new Problem("https://conclave.dev/problems/rotation-aborted", "Rotation aborted", 409,
                        $"operation {op.Id} was aborted: {op.Error ?? "no reason recorded"}; the key is unchanged"));
                default:
                    await Task.Delay(TimeSpan.FromMilliseconds(250), ct).ConfigureAwait(false);
                    op = await GetOperationAsync(op.Id, ct).ConfigureAwait(false);
                    break;
            }
        }
    }

    /// <summary>A key's rotation schedule (404 problem when it has none).</summary>
    public Task<RotationSchedule> GetRotationScheduleAsync(string name, CancellationToken ct = default) => GetAsync($"v1/keys/{Esc(name)}/rotation-schedule", J.RotationSchedule, ct);

    /// <summary>Sets a threshold key's schedule: refresh every <paramref name="intervalSeconds"/> and/or after <paramref name="afterSignatures"/> signatures.</summary>
    public async Task<RotationSchedule> SetRotationScheduleAsync(string name, long? intervalSeconds, long? afterSignatures, CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.PutAsJsonAsync(new Uri($"v1/keys/{Esc(name)}/rotation-schedule", UriKind.Relative),
            new RotationScheduleRequest(intervalSeconds, afterSignatures), J.RotationScheduleRequest, ct).ConfigureAwait(false);
        return await ReadAsync(r, J.RotationSchedule, ct).ConfigureAwait(false);
    }

    /// <summary>Removes a key's schedule.</summary>
    public async Task RemoveRotationScheduleAsync(string name, CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.DeleteAsync(new Uri($"v1/keys/{Esc(name)}/rotation-schedule", UriKind.Relative), ct).ConfigureAwait(false);
        if (!r.IsSuccessStatusCode)
        {
            _ = await ReadAsync(r, J.Problem, ct).ConfigureAwait(false); // throws the problem
        }
    }

    /// <summary>The risk level in force, why and since when (GET /v1/risk).</summary>
    public Task<RiskStatus> GetRiskAsync(CancellationToken ct = default) => GetAsync("v1/risk", J.RiskStatus, ct);

    /// <summary>Sets the manual risk level, a floor (PUT /v1/risk; roles admin or operator): higher applies at once, lower after the cool-down.</summary>
    public async Task<RiskStatus> SetRiskAsync(string level, string? reason = null, CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.PutAsJsonAsync(new Uri("v1/risk", UriKind.Relative), new RiskSetRequest(level, reason), J.RiskSetRequest, ct).ConfigureAwait(false);
        return await ReadAsync(r, J.RiskStatus, ct).ConfigureAwait(false);
    }

    /// <summary>The caller's vote to leave lockdown (POST /v1/risk/lockdown/exit; a configured lockdown-exit approver).</summary>
    public async Task<RiskLockdownVote> VoteLockdownExitAsync(CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.PostAsync(new Uri("v1/risk/lockdown/exit", UriKind.Relative), null, ct).ConfigureAwait(false);
        return await ReadAsync(r, J.RiskLockdownVote, ct).ConfigureAwait(false);
    }

    /// <summary>The signer nodes with their trust and the keys each holds.</summary>
    public async Task<IReadOnlyList<NodeInfo>> ListNodesAsync(CancellationToken ct = default) => (await GetAsync("v1/admin/nodes", J.NodeList, ct).ConfigureAwait(false)).Nodes;

    public Task<NodeInfo> GetNodeAsync(uint id, CancellationToken ct = default) => GetAsync($"v1/admin/nodes/{id}", J.NodeInfo, ct);

    /// <summary>
    /// Evicts a suspect signer node: it is marked untrusted and every key it holds is reshared away from it (to the other
    /// holders, or to <paramref name="replacement"/>). When the server answers 202 (the keys outlived the request) this
    /// polls the node until no key holds it; <paramref name="progress"/> sees each state.
    /// </summary>
    public async Task<Eviction> EvictNodeAsync(uint id, uint? replacement = null, string? reason = null, CancellationToken ct = default, IProgress<NodeInfo>? progress = null)
    {
        using HttpResponseMessage r = await _http.PostAsJsonAsync(new Uri($"v1/admin/nodes/{id}/evict", UriKind.Relative),
            new EvictNodeRequest(replacement, reason), J.EvictNodeRequest, ct).ConfigureAwait(false);
        Eviction e = await ReadAsync(r, J.Eviction, ct).ConfigureAwait(false);
        NodeInfo node = e.Node;
        while (node.Keys.Count > 0)
        {
            progress?.Report(node);
            await Task.Delay(TimeSpan.FromMilliseconds(500), ct).ConfigureAwait(false);
            node = await GetNodeAsync(id, ct).ConfigureAwait(false);
        }

        return e with { Node = node, Finished = true };
    }

    /// <summary>Lets an evicted node take part in new keys again.</summary>
    public async Task<NodeInfo> ReadmitNodeAsync(uint id, CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.PostAsync(new Uri($"v1/admin/nodes/{id}/readmit", UriKind.Relative), null, ct).ConfigureAwait(false);
        return await ReadAsync(r, J.NodeInfo, ct).ConfigureAwait(false);
    }

    public Task<AuditPage> ReadAuditAsync(long after = 0, int limit = 100, CancellationToken ct = default) => GetAsync($"v1/audit?after={after}&limit={limit}", J.AuditPage, ct);

    /// <summary>The newest <paramref name="last"/> entries (1 to 1000), oldest first, as tail shows them.</summary>
    public Task<AuditPage> ReadAuditTailAsync(int last = 100, CancellationToken ct = default) => GetAsync($"v1/audit?last={last}", J.AuditPage, ct);

    public Task<AuditVerification> VerifyAuditAsync(CancellationToken ct = default) => GetAsync("v1/audit/verify", J.AuditVerification, ct);

    /// <summary>
    /// Checks every threshold key of the server store against the signer nodes now, re-synchronising the store where it
    /// is behind them (docs/OPERATIONS.md "Restoring the server").
    /// </summary>
    /// <summary>
    /// Rotates the server audit log's checkpoint key (admin): the outgoing key signs the handover to a fresh one in the
    /// log itself (docs/ROTATION.md "Rotating the audit log's checkpoint key").
    /// </summary>
    public async Task<AuditKeyRotation> RotateAuditKeyAsync(CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.PostAsync(new Uri("v1/admin/audit/rotate-key", UriKind.Relative), null, ct).ConfigureAwait(false);
        return await ReadAsync(r, J.AuditKeyRotation, ct).ConfigureAwait(false);
    }

    public async Task<KeySyncResult> ResyncAsync(CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.PostAsync(new Uri("v1/cluster/resync", UriKind.Relative), null, ct).ConfigureAwait(false);
        return await ReadAsync(r, J.KeySyncResult, ct).ConfigureAwait(false);
    }

    public async Task<ReadyStatus> ReadyAsync(CancellationToken ct = default)
    {
        using HttpResponseMessage r = await _http.GetAsync(new Uri("readyz", UriKind.Relative), ct).ConfigureAwait(false);
        return await r.Content.ReadFromJsonAsync(J.ReadyStatus, ct).ConfigureAwait(false) ?? throw new ConclaveApiException("empty readiness response");
    }

    private static Uri ParseBaseUrl(string baseUrl)
    {
        ArgumentException.ThrowIfNullOrEmpty(baseUrl);
        string withSlash = baseUrl.EndsWith('/') ? baseUrl : baseUrl + "/";
        return Uri.TryCreate(withSlash, UriKind.Absolute, out Uri? uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri
            : throw new ArgumentException("the server URL must be an absolute http(s) URL", nameof(baseUrl));
    }

    private static string Esc(string name) => Uri.EscapeDataString(name);

    /// <summary>
    /// Sends a JSON body (or none) to a route and returns the JSON answer: for the policy and approval routes
    /// (docs/API.md "Policies", "Approvals"), whose bodies are policy documents and explained decisions. A problem
    /// answer throws <see cref="ConclaveApiException"/>.
    /// </summary>
    public async Task<System.Text.Json.Nodes.JsonNode?> SendJsonAsync(HttpMethod method, string path, string? json, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(method);
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative))
        {
            Content = json is null ? null : new StringContent(json, System.Text.Encoding.UTF8, "application/json"),
        };
        using HttpResponseMessage r = await _http.SendAsync(request, ct).ConfigureAwait(false);
        if (!r.IsSuccessStatusCode)
        {
            await ReadAsync(r, J.Problem, ct).ConfigureAwait(false);
        }

        string text = await r.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        return text.Length == 0 ? null : System.Text.Json.Nodes.JsonNode.Parse(text);
    }

    /// <summary>Escapes one path segment (a key, policy or request id).</summary>
    public static string Segment(string value) => Esc(value);

    private async Task<T> GetAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken ct)
    {
        using HttpResponseMessage r = await _http.GetAsync(new Uri(path, UriKind.Relative), ct).ConfigureAwait(false);
        return await ReadAsync(r, type, ct).ConfigureAwait(false);
    }

    private async Task<TOut> PostAsync<TIn, TOut>(string path, TIn body, JsonTypeInfo<TIn> inType, JsonTypeInfo<TOut> outType, CancellationToken ct)
    {
        using HttpResponseMessage r = await _http.PostAsJsonAsync(new Uri(path, UriKind.Relative), body, inType, ct).ConfigureAwait(false);
        return await ReadAsync(r, outType, ct).ConfigureAwait(false);
    }

    private static async Task<T> ReadAsync<T>(HttpResponseMessage r, JsonTypeInfo<T> type, CancellationToken ct)
    {
        if (!r.IsSuccessStatusCode)
        {
            Problem? problem = null;
            try
            {
                problem = await r.Content.ReadFromJsonAsync(J.Problem, ct).ConfigureAwait(false);
            }
            catch (JsonException)
            {
            }

            throw new ConclaveApiException(problem ?? new Problem("about:blank", r.ReasonPhrase ?? "error", (int)r.StatusCode, $"HTTP {(int)r.StatusCode} {r.ReasonPhrase}"));
        }

        return await r.Content.ReadFromJsonAsync(type, ct).ConfigureAwait(false) ?? throw new ConclaveApiException("empty response");
    }

    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }

        _ownedKey?.Dispose();
        _ownedKey = null;
    }
}
