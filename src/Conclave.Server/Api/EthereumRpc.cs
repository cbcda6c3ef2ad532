using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Crypto;
using Conclave.Crypto.Signing;
using Conclave.Policy.Venues;
using Conclave.Server.Chains;
using Conclave.Server.Config;
using Conclave.Server.Policy;
using Conclave.Storage.Keys;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Api;

/// <summary>
/// Ethereum JSON-RPC 2.0 signer at POST /rpc, for keys with an Ethereum address (ecdsa-secp256k1): eth_accounts,
/// eth_chainId (server.json <c>chainId</c>, default 1), eth_sign and personal_sign (EIP-191 0x45), eth_signTransaction (legacy/EIP-155, EIP-2930, EIP-1559; returns the
/// raw signed transaction; nonce, gas and fees are required, and a legacy transaction without chain id is refused
/// unless server.json sets <c>allowUnprotectedTransactions</c>) and eth_signTypedData_v4 (EIP-712). Requests without
/// an id (notifications) are carried out and not answered. Signatures are r ‖ s ‖ v with v = 27 + recovery id.
/// Errors are JSON-RPC error objects with HTTP 200: -32700 parse error, -32600 invalid request, -32601 unknown
/// method, -32602 invalid params (bad hex, unknown account, malformed transaction), -32000 signing failed.
/// </summary>
public static class EthereumRpc
{
    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // AuditOneCommit: a signing call's intent, decision and velocity reservation (and a threshold key's round entry) are
        // committed together; every effect before the response flushes what the request holds first (the send of
        // eth_sendTransaction, a forwarded call such as eth_sendRawTransaction: AuditTrail.RequireIntentAsync).
        app.MapPost("/rpc", HandleAsync).WithName("EthereumJsonRpc").WithTags("rpc").WithMetadata(new AuditOverlap(), new AuditOneCommit())
            .Accepts<JsonObject>("application/json").Produces<JsonObject>(200, "application/json").ProducesProblem(401);

        // A signing call held for approval is signed here once its approvals are met (docs/POLICY.md "Approvals through the server").
        app.Services.GetRequiredService<ApprovalService>().Register(ApprovalService.RpcRoute, HeldExecutor(app.Services.GetRequiredService<KeyService>()));
    }

    /// <summary>The JSON-RPC error code of a signing call held for approval; its data is the held request (as the REST 202 body).</summary>
    public const int HeldForApprovalCode = -32002;

    private static async Task HandleAsync(HttpContext ctx, KeyService keys, ServerConfig config, PolicyGate policy, VenueProfileSource venueProfiles, EthereumTransactions transactions,
        ApprovalService approvals)
    {
        VenueRegistry venues = await venueProfiles.CurrentAsync(ctx.RequestAborted).ConfigureAwait(false);
        var rpc = new RpcScope(ctx, keys, config, policy, venues, CallerIdentity.Get(ctx), transactions, approvals);
        JsonNode? response;
        JsonDocument doc;
        try
        {
            // Duplicate members are refused like on every JSON route (which one would count is ambiguous).
            doc = await JsonDocument.ParseAsync(ctx.Request.Body, new JsonDocumentOptions { AllowDuplicateProperties = false }, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            await WriteAsync(ctx, Error(null, -32700, e.Message.Contains("uplicate", StringComparison.Ordinal) ? "parse error: a member is given more than once" : "parse error")).ConfigureAwait(false);
            return;
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind == JsonValueKind.Array)
            {
                if (doc.RootElement.GetArrayLength() is 0 or > 100)
                {
                    response = Error(null, -32600, "a batch holds 1 to 100 requests");
                }
                else
                {
                    var results = new JsonArray();
                    foreach (JsonElement r in doc.RootElement.EnumerateArray())
                    {
                        // A notification (no "id") is carried out but not answered (JSON-RPC 2.0 §4.1, §6).
                        if (await CallAsync(rpc, r).ConfigureAwait(false) is { } one && !IsNotification(r))
                        {
                            results.Add(one);
                        }
                    }

                    response = results.Count > 0 ? results : null;
                }
            }
            else
            {
                JsonObject one = await CallAsync(rpc, doc.RootElement).ConfigureAwait(false);
                response = IsNotification(doc.RootElement) ? null : one;
            }
        }

        await WriteAsync(ctx, response).ConfigureAwait(false);
    }

    /// <summary>A well-formed request object without an "id" member: a notification, which gets no response.</summary>
    private static bool IsNotification(JsonElement r) =>
        r.ValueKind == JsonValueKind.Object && !r.TryGetProperty("id", out _) && r.TryGetProperty("method", out JsonElement m) && m.ValueKind == JsonValueKind.String;

    private static async Task WriteAsync(HttpContext ctx, JsonNode? node)
    {
        await AuditTrail.RequireIntentAsync(ctx).ConfigureAwait(false);
        if (node is null)
        {
            // Only notifications: nothing to answer (JSON-RPC 2.0 §6).
            ctx.Response.StatusCode = 204;
            return;
        }

        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(node?.ToJsonString() ?? "null", ctx.RequestAborted).ConfigureAwait(false);
    }

    private static JsonObject Error(JsonNode? id, int code, string message, JsonNode? data = null)
    {
        var error = new JsonObject { ["code"] = code, ["message"] = message };
        if (data is not null)
        {
            error["data"] = data;
        }

        return new() { ["jsonrpc"] = "2.0", ["id"] = id, ["error"] = error };
    }

    /// <summary>One call; its method, key and outcome go to the request's audit outcome entry (<see cref="AuditTrail"/>).</summary>
    private static async Task<JsonObject> CallAsync(RpcScope rpc, JsonElement req)
    {
        HttpContext ctx = rpc.Http;
        var call = new RpcCall();
        JsonObject response = await CallCoreAsync(req, rpc, call, ctx.RequestAborted).ConfigureAwait(false);
        string outcome = response["error"] is JsonObject e ? "error " + e["code"]!.GetValue<int>().ToString(System.Globalization.CultureInfo.InvariantCulture) : "ok";
        AuditTrail.AddCall(ctx, call.Method ?? "(invalid)", call.KeyId, outcome);
        return response;
    }

    private static async Task<JsonObject> CallCoreAsync(JsonElement req, RpcScope rpc, RpcCall call, CancellationToken ct)
    {
        KeyService keys = rpc.Keys;
        ServerConfig config = rpc.Config;
        if (req.ValueKind != JsonValueKind.Object || !req.TryGetProperty("method", out JsonElement m) || m.ValueKind != JsonValueKind.String)
        {
            return Error(null, -32600, "invalid request");
        }

        string method = m.GetString()!;
        call.Method = method.Length <= 40 && method.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') ? method : "(unknown)";

        JsonNode? id = req.TryGetProperty("id", out JsonElement idEl) ? JsonNode.Parse(idEl.GetRawText()) : null;
        JsonElement[] p = req.TryGetProperty("params", out JsonElement ps) && ps.ValueKind == JsonValueKind.Array ? [.. ps.EnumerateArray()] : [];
        try
        {
            JsonNode? result = method switch
            {
                "eth_chainId" => JsonValue.Create("0x" + config.ChainId.ToString("x", System.Globalization.CultureInfo.InvariantCulture)),
                "eth_accounts" => new JsonArray([.. (await keys.EthereumAccountsAsync(ct).ConfigureAwait(false)).Select(a => (JsonNode)JsonValue.Create(a)!)]),
                "eth_sign" => await SignPersonalAsync(rpc, call, Param(p, 0), Param(p, 1), ct).ConfigureAwait(false),
                "personal_sign" => await SignPersonalAsync(rpc, call, Param(p, 1), Param(p, 0), ct).ConfigureAwait(false),
                "eth_signTransaction" => await SignTransactionAsync(rpc, call, p.Length > 0 ? p[0] : default, ct).ConfigureAwait(false),
                "eth_signTypedData_v4" => await SignTypedDataAsync(rpc, call, Param(p, 0), p.Length > 1 ? p[1] : default, ct).ConfigureAwait(false),
                "eth_sendTransaction" => await SendTransactionAsync(rpc, call, p.Length > 0 ? p[0] : default, ct).ConfigureAwait(false),
                _ when ChainUpstreams.ForwardedMethods.Contains(method) => await ForwardAsync(rpc, method, req, ct).ConfigureAwait(false),
                _ => throw new RpcException(-32601, "method not found"),
            };
            return new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["result"] = result };
        }
        catch (RpcException e)
        {
            return Error(id, e.Code, e.Message);
        }
        catch (HeldForApprovalException held)
        {
            // Held by policy: the call is stored as a request; once approved it is signed and GET /v1/requests/{id} returns the result.
            return Error(id, HeldForApprovalCode, $"held for approval as request {held.Held.RequestId}: once approved it is signed and GET /v1/requests/{held.Held.RequestId} returns the result",
                JsonSerializer.SerializeToNode(held.Held, ApiJsonContext.Default.HeldResponse));
        }
        catch (CryptoFormatException e)
        {
            return Error(id, -32602, "invalid params: " + e.Message);
        }
        catch (ApiException e) when (e.Problem.Policy is { } policy)
        {
            // Denied by policy (docs/POLICY.md "Enforcement"): -32001 with the explained decision as the error's data.
            return Error(id, -32001, e.Problem.Detail, JsonSerializer.SerializeToNode(policy, ApiJsonContext.Default.PolicyExplanation));
        }
        catch (ApiException e) when (e.Problem.Type == ProblemTypes.ChainRefused)
        {
            return Error(id, -32000, e.Problem.Detail);
        }
        catch (ApiException e) when (e.Problem.Status < 500)
        {
            return Error(id, -32602, "invalid params: " + e.Problem.Detail);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            ProblemBody problem = ProblemTypes.FromException(e);
            return Error(id, -32000, problem.Detail);
        }
    }

    private static string Param(JsonElement[] p, int i) =>
        p.Length > i && p[i].ValueKind == JsonValueKind.String ? p[i].GetString()! : throw new RpcException(-32602, $"invalid params: parameter {i} must be a string");

    private static async Task<KeyRecord> AccountAsync(KeyService keys, RpcCall call, string address, CancellationToken ct)
    {
        if (!EthereumAddress.TryParse(address, out byte[] a))
        {
            throw new RpcException(-32602, "invalid params: not an Ethereum address");
        }

        KeyRecord key = await keys.FindByEthereumAddressAsync(EthereumAddress.ToChecksum(a), ct).ConfigureAwait(false)
            ?? throw new RpcException(-32602, "invalid params: no key with this address");
        call.KeyId = key.Id;
        return key;
    }

    private static async Task<JsonNode> SignPersonalAsync(RpcScope rpc, RpcCall call, string address, string data, CancellationToken ct)
    {
        KeyRecord key = await AccountAsync(rpc.Keys, call, address, ct).ConfigureAwait(false);
        byte[] message = data.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? Hex.Parse(data, "data") : Encoding.UTF8.GetBytes(data);
        byte[] digest = PersonalMessage.Hash(message);
        PolicyGrant grant = await rpc.AuthorizeAsync(key, SigningOperations.Request(rpc.Caller.Principal, key, Conclave.Policy.Operations.OperationKind.Message), call, digest, null, ct)
            .ConfigureAwait(false);
        return await SignDigestAsync(rpc, grant, key, digest, ct).ConfigureAwait(false);
    }

    private static async Task<JsonNode> SignTypedDataAsync(RpcScope rpc, RpcCall call, string address, JsonElement typed, CancellationToken ct)
    {
        KeyRecord key = await AccountAsync(rpc.Keys, call, address, ct).ConfigureAwait(false);
        byte[] digest;
        Conclave.Policy.Operations.OperationRequest op;
        if (typed.ValueKind == JsonValueKind.String)
        {
            try
            {
                // Duplicate members are refused here too: the digest and policy must read the same document.
                using JsonDocument d = JsonDocument.Parse(typed.GetString()!, new JsonDocumentOptions { AllowDuplicateProperties = false });
                digest = TypedData.Hash(d.RootElement);
                op = SigningOperations.ForTypedData(rpc.Caller.Principal, key, d.RootElement, rpc.Venues);
            }
            catch (JsonException)
            {
                throw new RpcException(-32602, "invalid params: typed data is not valid JSON");
            }
        }
        else
        {
            digest = TypedData.Hash(typed);
            op = SigningOperations.ForTypedData(rpc.Caller.Principal, key, typed, rpc.Venues);
        }

        PolicyGrant grant = await rpc.AuthorizeAsync(key, op, call, digest, null, ct).ConfigureAwait(false);
        return await SignDigestAsync(rpc, grant, key, digest, ct).ConfigureAwait(false);
    }

    private static async Task<JsonNode> SignTransactionAsync(RpcScope rpc, RpcCall call, JsonElement tx, CancellationToken ct)
    {
        KeyService keys = rpc.Keys;
        ServerConfig config = rpc.Config;
        if (tx.ValueKind != JsonValueKind.Object || !tx.TryGetProperty("from", out JsonElement from) || from.ValueKind != JsonValueKind.String)
        {
            throw new RpcException(-32602, "invalid params: a transaction object with 'from' is required");
        }

        KeyRecord key = await AccountAsync(keys, call, from.GetString()!, ct).ConfigureAwait(false);
        EthereumTransaction t = EthereumTransaction.FromJson(tx);
        RequireFields(tx, t);
        if (t.Type == 0 && t.ChainId is null or { IsZero: true } && !config.AllowUnprotectedTransactions)
        {
            throw new RpcException(-32602, "invalid params: a legacy transaction without chainId is valid on every EVM chain (EIP-155); "
                + "add chainId, or set allowUnprotectedTransactions in server.json");
        }

        byte[] hash = t.SigningHash();
        long chainId = t.ChainId is { IsZero: false } c && c <= long.MaxValue ? (long)c : config.ChainId;
        PolicyGrant grant = await rpc.AuthorizeAsync(key, SigningOperations.ForTransaction(rpc.Caller.Principal, key, rpc.Venues, chainId, t.To, t.Data, t.Value), call, hash,
            JsonNode.Parse(tx.GetRawText()), ct).ConfigureAwait(false);
        try
        {
            SignatureResult sig = await keys.SignDigestEcdsaAsync(key, hash, ct).ConfigureAwait(false);
            byte[] raw = t.Serialize(sig.Signature, sig.RecoveryId!.Value);

            // Read back what is about to be released with the strict decoder: it must parse and recover to this key.
            if (SignedEthereumTransaction.Decode(raw).SenderAddress != EthereumAddress.FromPublicKey(key.PublicKey))
            {
                throw new InvalidOperationException("the signed transaction does not recover to the signing key");
            }

            return JsonValue.Create("0x" + Convert.ToHexStringLower(raw));
        }
        catch
        {
            await rpc.Policy.ReleaseAsync(grant).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The fields a signer must not guess: nonce, the gas limit and the fees of the transaction's type. A missing one
    /// is refused rather than signed as 0 (a transaction that can never be mined, or one that replaces another).
    /// </summary>
    private static void RequireFields(JsonElement tx, EthereumTransaction t)
    {
        static bool Has(JsonElement o, string name) => o.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null;
        var missing = new List<string>();
        if (!Has(tx, "nonce"))
        {
            missing.Add("nonce");
        }

        if (!Has(tx, "gas") && !Has(tx, "gasLimit"))
        {
            missing.Add("gas");
        }

        string[] fees = t.Type == 2 ? ["maxFeePerGas", "maxPriorityFeePerGas"] : ["gasPrice"];
        missing.AddRange(fees.Where(f => !Has(tx, f)));
        if (missing.Count > 0)
        {
            throw new RpcException(-32602, $"invalid params: the transaction needs {string.Join(", ", missing)} (a signer does not fill them in)");
        }
    }

    private static async Task<JsonNode> SignDigestAsync(RpcScope rpc, PolicyGrant grant, KeyRecord key, byte[] digest, CancellationToken ct)
    {
        SignatureResult sig;
        try
        {
            sig = await rpc.Keys.SignDigestEcdsaAsync(key, digest, ct).ConfigureAwait(false);
        }
        catch
        {
            await rpc.Policy.ReleaseAsync(grant).ConfigureAwait(false);
            throw;
        }

        return JsonValue.Create("0x" + Convert.ToHexStringLower(sig.Signature) + Convert.ToHexStringLower([(byte)(27 + sig.RecoveryId!.Value)]));
    }

    /// <summary>
    /// A read method (<see cref="ChainUpstreams.ForwardedMethods"/>) passed as it is to the upstream of the chain /rpc serves
    /// (server.json <c>chainId</c>); the upstream's error object comes back as it is. Without an upstream: -32601 as before.
    /// </summary>
    private static async Task<JsonNode?> ForwardAsync(RpcScope rpc, string method, JsonElement req, CancellationToken ct)
    {
        long chainId = rpc.Config.ChainId;
        if (!rpc.Transactions.Upstreams.Has(chainId))
        {
            throw new RpcException(-32601, $"method not found (server.json has no upstream for chain {chainId.ToString(System.Globalization.CultureInfo.InvariantCulture)})");
        }

        JsonArray parameters;
        if (!req.TryGetProperty("params", out JsonElement ps) || ps.ValueKind == JsonValueKind.Null)
        {
            parameters = [];
        }
        else if (ps.ValueKind == JsonValueKind.Array)
        {
            parameters = (JsonArray)JsonNode.Parse(ps.GetRawText())!;
        }
        else
        {
            throw new RpcException(-32602, "invalid params: params must be an array");
        }

        try
        {
            // The intent is durable before anything reaches the chain's node (eth_sendRawTransaction broadcasts).
            await AuditTrail.RequireIntentAsync(rpc.Http).ConfigureAwait(false);
            return await rpc.Transactions.Upstreams.CallAsync(chainId, method, parameters, ct).ConfigureAwait(false);
        }
        catch (UpstreamException e)
        {
            throw new RpcException(e.Answered ? e.Code : -32000, e.Message);
        }
    }

    /// <summary>
    /// eth_sendTransaction (web3signer's proxy mode): the key of <c>from</c> signs an EIP-1559 transaction whose missing
    /// nonce, gas, fees and chain id Conclave fills (<see cref="EthereumTransactions"/>), through policy as eth_signTransaction,
    /// then sends it; the result is the transaction hash.
    /// </summary>
    private static async Task<JsonNode> SendTransactionAsync(RpcScope rpc, RpcCall call, JsonElement tx, CancellationToken ct)
    {
        if (tx.ValueKind != JsonValueKind.Object || !tx.TryGetProperty("from", out JsonElement from) || from.ValueKind != JsonValueKind.String)
        {
            throw new RpcException(-32602, "invalid params: a transaction object with 'from' is required");
        }

        foreach (JsonProperty m in tx.EnumerateObject())
        {
            if (m.Name is not ("from" or "to" or "value" or "data" or "input" or "gas" or "gasLimit" or "maxFeePerGas" or "maxPriorityFeePerGas" or "nonce" or "chainId" or "type"))
            {
                throw new RpcException(-32602, m.Name == "gasPrice" ? "invalid params: eth_sendTransaction sends EIP-1559 transactions; give maxFeePerGas/maxPriorityFeePerGas or none"
                    : "invalid params: unknown transaction member " + (m.Name.Length <= 40 ? m.Name : m.Name[..40]));
            }
        }

        if (tx.TryGetProperty("type", out JsonElement type) && !(type.ValueKind == JsonValueKind.String && type.GetString() is "0x2" or "0x02"))
        {
            throw new RpcException(-32602, "invalid params: eth_sendTransaction sends type 0x2 (EIP-1559) transactions");
        }

        KeyRecord key = await AccountAsync(rpc.Keys, call, from.GetString()!, ct).ConfigureAwait(false);
        using JsonDocument normalised = Normalise(tx);
        (TransactionDraft draft, _) = EthereumTransactionRoutes.Parse(normalised.RootElement, rpc.Venues);
        BuiltTransaction built = await rpc.Transactions.BuildSignAndSendAsync(rpc.Caller, key, draft, send: true, "rpc eth_sendTransaction",
            () => AuditTrail.RequireIntentAsync(rpc.Http), ct).ConfigureAwait(false);
        return JsonValue.Create(built.Hash);

        JsonDocument Normalise(JsonElement t)
        {
            // The REST body's names: input → data, gasLimit → gas, chainId defaults to the chain /rpc serves.
            var o = new JsonObject();
            foreach (JsonProperty m in t.EnumerateObject())
            {
                string name = m.Name switch { "input" => "data", "gasLimit" => "gas", _ => m.Name };
                if (name is "from" or "type" || m.Value.ValueKind == JsonValueKind.Null)
                {
                    continue;
                }

                if (o.ContainsKey(name))
                {
                    throw new RpcException(-32602, $"invalid params: {name} is given twice");
                }

                o[name] = JsonNode.Parse(m.Value.GetRawText());
            }

            o["chainId"] ??= rpc.Config.ChainId;
            return JsonDocument.Parse(o.ToJsonString());
        }
    }

    /// <summary>What one /rpc request signs with: its services and its caller.</summary>
    private sealed record RpcScope(HttpContext Http, KeyService Keys, ServerConfig Config, PolicyGate Policy, VenueRegistry Venues, CallerIdentity Caller,
        EthereumTransactions Transactions, ApprovalService Approvals)
    {
        /// <summary>
        /// Policy for one call; the request hash covers the method and the exact digest to be signed. A call that needs
        /// approval is held: the method, the digest and (for eth_signTransaction) the transaction are stored so that
        /// <see cref="HeldExecutor"/> can sign it once approved.
        /// </summary>
        public Task<PolicyGrant> AuthorizeAsync(KeyRecord key, Conclave.Policy.Operations.OperationRequest op, RpcCall call, byte[] digest, JsonNode? transaction,
            CancellationToken ct)
        {
            string method = call.Method ?? "(unknown)";
            var held = new JsonObject { ["method"] = method, ["digest"] = Convert.ToHexStringLower(digest) };
            if (transaction is not null)
            {
                held["transaction"] = transaction;
            }

            return Policy.AuthorizeAsync(Caller, key, op, "rpc " + method, Convert.ToHexStringLower(digest),
                Approvals.Sink(ApprovalService.RpcRoute, key, Caller, Conclave.Policy.Operations.Operations.Name(op.Operation), held.ToJsonString()), ct);
        }
    }

    /// <summary>
    /// Signs a held /rpc call once approved: the stored digest (eth_sign, personal_sign, eth_signTypedData_v4: r ‖ s ‖ v),
    /// or the stored transaction, whose signing hash must still be the approved digest (eth_signTransaction: the raw
    /// signed transaction, read back with the strict decoder). The request's result is <c>{"method", "result", "policy"}</c>.
    /// </summary>
    internal static HeldRequestExecutor HeldExecutor(KeyService keys) => async (key, body, policy, ct) =>
    {
        using JsonDocument doc = JsonDocument.Parse(body);
        JsonElement held = doc.RootElement;
        string method = held.GetProperty("method").GetString()!;
        byte[] digest = Convert.FromHexString(held.GetProperty("digest").GetString()!);
        string result;
        if (held.TryGetProperty("transaction", out JsonElement tx))
        {
            EthereumTransaction t = EthereumTransaction.FromJson(tx);
            if (!t.SigningHash().AsSpan().SequenceEqual(digest))
            {
                throw new InvalidOperationException("the held transaction does not hash to the approved digest");
            }

            SignatureResult sig = await keys.SignDigestEcdsaAsync(key, digest, ct).ConfigureAwait(false);
            byte[] raw = t.Serialize(sig.Signature, sig.RecoveryId!.Value);
            if (SignedEthereumTransaction.Decode(raw).SenderAddress != EthereumAddress.FromPublicKey(key.PublicKey))
            {
                throw new InvalidOperationException("the signed transaction does not recover to the signing key");
            }

            result = "0x" + Convert.ToHexStringLower(raw);
        }
        else
        {
            SignatureResult sig = await keys.SignDigestEcdsaAsync(key, digest, ct).ConfigureAwait(false);
            result = "0x" + Convert.ToHexStringLower(sig.Signature) + Convert.ToHexStringLower([(byte)(27 + sig.RecoveryId!.Value)]);
        }

        return Encoding.UTF8.GetBytes(new JsonObject
        {
            ["method"] = method,
            ["result"] = result,
            ["policy"] = JsonSerializer.SerializeToNode(policy, ApiJsonContext.Default.PolicyExplanation),
        }.ToJsonString());
    };

    /// <summary>What one call did, for the audit entry.</summary>
    private sealed class RpcCall
    {
        public string? Method { get; set; }

        public string? KeyId { get; set; }
    }

    private sealed class RpcException(int code, string message) : Exception(message)
    {
        public int Code { get; } = code;
    }
}
