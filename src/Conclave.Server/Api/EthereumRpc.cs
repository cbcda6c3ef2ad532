using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Crypto;
using Conclave.Crypto.Signing;
using Conclave.Storage.Keys;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Conclave.Server.Api;

/// <summary>
/// Ethereum JSON-RPC 2.0 signer at POST /rpc, for keys with an Ethereum address (ecdsa-secp256k1): eth_accounts,
/// eth_sign and personal_sign (EIP-191 0x45), eth_signTransaction (legacy/EIP-155, EIP-2930, EIP-1559; returns the
/// raw signed transaction) and eth_signTypedData_v4 (EIP-712). Signatures are r ‖ s ‖ v with v = 27 + recovery id.
/// Errors are JSON-RPC error objects with HTTP 200: -32700 parse error, -32600 invalid request, -32601 unknown
/// method, -32602 invalid params (bad hex, unknown account, malformed transaction), -32000 signing failed.
/// </summary>
public static class EthereumRpc
{
    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapPost("/rpc", HandleAsync).WithName("EthereumJsonRpc").WithTags("rpc").WithMetadata(new AuditOverlap())
            .Accepts<JsonObject>("application/json").Produces<JsonObject>(200, "application/json").ProducesProblem(401);
    }

    private static async Task HandleAsync(HttpContext ctx, KeyService keys)
    {
        JsonNode? response;
        JsonDocument doc;
        try
        {
            doc = await JsonDocument.ParseAsync(ctx.Request.Body, default, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException)
        {
            await WriteAsync(ctx, Error(null, -32700, "parse error")).ConfigureAwait(false);
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
                        results.Add(await CallAsync(ctx, r, keys).ConfigureAwait(false));
                    }

                    response = results;
                }
            }
            else
            {
                response = await CallAsync(ctx, doc.RootElement, keys).ConfigureAwait(false);
            }
        }

        await WriteAsync(ctx, response).ConfigureAwait(false);
    }

    private static async Task WriteAsync(HttpContext ctx, JsonNode? node)
    {
        await AuditTrail.RequireIntentAsync(ctx).ConfigureAwait(false);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(node?.ToJsonString() ?? "null", ctx.RequestAborted).ConfigureAwait(false);
    }

    private static JsonObject Error(JsonNode? id, int code, string message) =>
        new() { ["jsonrpc"] = "2.0", ["id"] = id, ["error"] = new JsonObject { ["code"] = code, ["message"] = message } };

    /// <summary>One call; its method, key and outcome go to the request's audit outcome entry (<see cref="AuditTrail"/>).</summary>
    private static async Task<JsonObject> CallAsync(HttpContext ctx, JsonElement req, KeyService keys)
    {
        var call = new RpcCall();
        JsonObject response = await CallCoreAsync(req, keys, call, ctx.RequestAborted).ConfigureAwait(false);
        string outcome = response["error"] is JsonObject e ? "error " + e["code"]!.GetValue<int>().ToString(System.Globalization.CultureInfo.InvariantCulture) : "ok";
        AuditTrail.AddCall(ctx, call.Method ?? "(invalid)", call.KeyId, outcome);
        return response;
    }

    private static async Task<JsonObject> CallCoreAsync(JsonElement req, KeyService keys, RpcCall call, CancellationToken ct)
    {
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
                "eth_accounts" => new JsonArray([.. (await keys.EthereumAccountsAsync(ct).ConfigureAwait(false)).Select(a => (JsonNode)JsonValue.Create(a)!)]),
                "eth_sign" => await SignPersonalAsync(keys, call, Param(p, 0), Param(p, 1), ct).ConfigureAwait(false),
                "personal_sign" => await SignPersonalAsync(keys, call, Param(p, 1), Param(p, 0), ct).ConfigureAwait(false),
                "eth_signTransaction" => await SignTransactionAsync(keys, call, p.Length > 0 ? p[0] : default, ct).ConfigureAwait(false),
                "eth_signTypedData_v4" => await SignTypedDataAsync(keys, call, Param(p, 0), p.Length > 1 ? p[1] : default, ct).ConfigureAwait(false),
                _ => throw new RpcException(-32601, "method not found"),
            };
            return new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["result"] = result };
        }
        catch (RpcException e)
        {
            return Error(id, e.Code, e.Message);
        }
        catch (CryptoFormatException e)
        {
            return Error(id, -32602, "invalid params: " + e.Message);
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

    private static async Task<JsonNode> SignPersonalAsync(KeyService keys, RpcCall call, string address, string data, CancellationToken ct)
    {
        KeyRecord key = await AccountAsync(keys, call, address, ct).ConfigureAwait(false);
        byte[] message = data.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? Hex.Parse(data, "data") : Encoding.UTF8.GetBytes(data);
        return await SignDigestAsync(keys, key, PersonalMessage.Hash(message), ct).ConfigureAwait(false);
    }

    private static async Task<JsonNode> SignTypedDataAsync(KeyService keys, RpcCall call, string address, JsonElement typed, CancellationToken ct)
    {
        KeyRecord key = await AccountAsync(keys, call, address, ct).ConfigureAwait(false);
        byte[] digest;
        if (typed.ValueKind == JsonValueKind.String)
        {
            try
            {
                using JsonDocument d = JsonDocument.Parse(typed.GetString()!);
                digest = TypedData.Hash(d.RootElement);
            }
            catch (JsonException)
            {
                throw new RpcException(-32602, "invalid params: typed data is not valid JSON");
            }
        }
        else
        {
            digest = TypedData.Hash(typed);
        }

        return await SignDigestAsync(keys, key, digest, ct).ConfigureAwait(false);
    }

    private static async Task<JsonNode> SignTransactionAsync(KeyService keys, RpcCall call, JsonElement tx, CancellationToken ct)
    {
        if (tx.ValueKind != JsonValueKind.Object || !tx.TryGetProperty("from", out JsonElement from) || from.ValueKind != JsonValueKind.String)
        {
            throw new RpcException(-32602, "invalid params: a transaction object with 'from' is required");
        }

        KeyRecord key = await AccountAsync(keys, call, from.GetString()!, ct).ConfigureAwait(false);
        EthereumTransaction t = EthereumTransaction.FromJson(tx);
        SignatureResult sig = await keys.SignDigestEcdsaAsync(key, t.SigningHash(), ct).ConfigureAwait(false);
        byte[] raw = t.Serialize(sig.Signature, sig.RecoveryId!.Value);

        // Read back what is about to be released with the strict decoder: it must parse and recover to this key.
        if (SignedEthereumTransaction.Decode(raw).SenderAddress != EthereumAddress.FromPublicKey(key.PublicKey))
        {
            throw new InvalidOperationException("the signed transaction does not recover to the signing key");
        }

        return JsonValue.Create("0x" + Convert.ToHexStringLower(raw));
    }

    private static async Task<JsonNode> SignDigestAsync(KeyService keys, KeyRecord key, byte[] digest, CancellationToken ct)
    {
        SignatureResult sig = await keys.SignDigestEcdsaAsync(key, digest, ct).ConfigureAwait(false);
        return JsonValue.Create("0x" + Convert.ToHexStringLower(sig.Signature) + Convert.ToHexStringLower([(byte)(27 + sig.RecoveryId!.Value)]));
    }

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
