using System.Globalization;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Policy.Operations;
using Conclave.Policy.Venues;
using Conclave.Server.Chains;
using Conclave.Storage.Keys;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Conclave.Server.Api;

/// <summary>
/// <c>POST /v1/keys/{name}/ethereum/transactions</c>: build, sign (through policy) and optionally send an EIP-1559
/// transaction (docs/VENUE.md). The body is <c>{"chainId","to","value"?,"data"?,"gas"?,"maxFeePerGas"?,
/// "maxPriorityFeePerGas"?,"nonce"?,"send"?}</c>, or a typed venue operation <c>{"operation","venue","args","chainId"?,"contract"?,...}</c> (chainId and contract, when given, must be the profile's)
/// whose calldata and contract come from the venue profile (<see cref="VenueRegistry.Build"/>).
/// </summary>
public static class EthereumTransactionRoutes
{
    private static readonly HashSet<string> s_members = new(StringComparer.Ordinal)
    {
        "chainId", "to", "value", "data", "gas", "maxFeePerGas", "maxPriorityFeePerGas", "nonce", "send", "operation", "venue", "args", "contract",
    };

    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // AuditOneCommit: the intent, the decision and a velocity reservation are committed together; the send flushes what
        // the request holds first (AuditTrail.RequireIntentAsync, before release).
        app.MapPost("/v1/keys/{name}/ethereum/transactions", HandleAsync).WithName("EthereumTransaction").WithTags("v1").WithMetadata(new AuditOverlap(), new AuditOneCommit())
            .Accepts<JsonObject>("application/json").Produces<JsonObject>(200, "application/json")
            .ProducesProblem(400).ProducesProblem(401).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409).ProducesProblem(413)
            .ProducesProblem(422).ProducesProblem(429).ProducesProblem(500).ProducesProblem(502).ProducesProblem(503).ProducesProblem(504);
        app.MapPost("/v1/keys/{name}/ethereum/transactions/{hash}/replace", ReplaceAsync).WithName("ReplaceEthereumTransaction").WithTags("v1").WithMetadata(new AuditOverlap(), new AuditOneCommit())
            .Accepts<JsonObject>("application/json").Produces<JsonObject>(200, "application/json")
            .ProducesProblem(400).ProducesProblem(401).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409)
            .ProducesProblem(422).ProducesProblem(429).ProducesProblem(500).ProducesProblem(502).ProducesProblem(503).ProducesProblem(504);
    }

    /// <summary>
    /// <c>POST /v1/keys/{name}/ethereum/transactions/{hash}/replace</c> <c>{"chainId"}</c>: a fee bump of a pending
    /// transaction of the key (<see cref="EthereumTransactions.ReplaceAsync"/>); the answer is the replacement's.
    /// </summary>
    private static async Task ReplaceAsync(HttpContext ctx, string name, string hash, KeyService keys, EthereumTransactions transactions)
    {
        KeyRecord key = await keys.GetAsync(ctx, name, ctx.RequestAborted).ConfigureAwait(false);
        long chainId;
        try
        {
            using JsonDocument doc = await JsonDocument.ParseAsync(ctx.Request.Body, new JsonDocumentOptions { AllowDuplicateProperties = false }, ctx.RequestAborted)
                .ConfigureAwait(false);
            JsonElement body = doc.RootElement;
            if (body.ValueKind != JsonValueKind.Object)
            {
                throw new ApiException(ProblemTypes.MalformedJson, "the body must be a JSON object");
            }

            foreach (JsonProperty p in body.EnumerateObject())
            {
                if (p.Name != "chainId")
                {
                    throw new ApiException(ProblemTypes.InvalidRequest, "unknown member " + (p.Name.Length <= 40 ? p.Name : p.Name[..40]));
                }
            }

            chainId = body.TryGetProperty("chainId", out JsonElement c) ? ChainIdOf(c) : throw new ApiException(ProblemTypes.InvalidRequest, "chainId is required");
        }
        catch (JsonException)
        {
            throw new ApiException(ProblemTypes.MalformedJson, "the body is not a JSON object (or a member is given twice)");
        }

        BuiltTransaction built = await transactions.ReplaceAsync(CallerIdentity.Get(ctx), key, chainId, hash, "POST /v1/keys/{name}/ethereum/transactions/{hash}/replace",
            () => AuditTrail.RequireIntentAsync(ctx), ctx.RequestAborted).ConfigureAwait(false);
        await RespondAsync(ctx, built).ConfigureAwait(false);
    }

    private static async Task HandleAsync(HttpContext ctx, string name, KeyService keys, EthereumTransactions transactions)
    {
        KeyRecord key = await keys.GetAsync(ctx, name, ctx.RequestAborted).ConfigureAwait(false);
        JsonDocument doc;
        try
        {
            doc = await JsonDocument.ParseAsync(ctx.Request.Body, new JsonDocumentOptions { AllowDuplicateProperties = false }, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException)
        {
            throw new ApiException(ProblemTypes.MalformedJson, "the body is not a JSON object (or a member is given twice)");
        }

        BuiltTransaction built;
        using (doc)
        {
            (TransactionDraft draft, bool send) = Parse(doc.RootElement, await transactions.VenuesAsync(ctx.RequestAborted).ConfigureAwait(false));
            built = await transactions.BuildSignAndSendAsync(CallerIdentity.Get(ctx), key, draft, send, "POST /v1/keys/{name}/ethereum/transactions",
                () => AuditTrail.RequireIntentAsync(ctx), ctx.RequestAborted)
                .ConfigureAwait(false);
        }

        await RespondAsync(ctx, built).ConfigureAwait(false);
    }

    private static async Task RespondAsync(HttpContext ctx, BuiltTransaction built)
    {
        var response = new JsonObject
        {
            ["raw"] = "0x" + Convert.ToHexStringLower(built.Raw),
            ["hash"] = built.Hash,
            ["from"] = built.From,
            ["nonce"] = built.Nonce.ToString(CultureInfo.InvariantCulture),
            ["chainId"] = built.ChainId,
            ["gas"] = built.Gas.ToString(CultureInfo.InvariantCulture),
            ["maxFeePerGas"] = built.MaxFeePerGas.ToString(CultureInfo.InvariantCulture),
            ["maxPriorityFeePerGas"] = built.MaxPriorityFeePerGas.ToString(CultureInfo.InvariantCulture),
            ["sent"] = built.Sent,
            ["policy"] = JsonSerializer.SerializeToNode(built.Policy, ApiJsonContext.Default.PolicyExplanation),
        };
        await AuditTrail.RequireIntentAsync(ctx).ConfigureAwait(false);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(response.ToJsonString(), ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Reads and checks the body; every problem is a 400 naming the member, never echoing a value.</summary>
    internal static (TransactionDraft Draft, bool Send) Parse(JsonElement body, VenueRegistry venues)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw new ApiException(ProblemTypes.MalformedJson, "the body must be a JSON object");
        }

        foreach (JsonProperty p in body.EnumerateObject())
        {
            if (!s_members.Contains(p.Name))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "unknown member " + (p.Name.Length <= 40 ? p.Name : p.Name[..40]));
            }
        }

        long? chainId = body.TryGetProperty("chainId", out JsonElement c) ? ChainIdOf(c) : null;
        byte[]? to = body.TryGetProperty("to", out JsonElement t) ? Address(t, "to") : null;
        byte[] data = body.TryGetProperty("data", out JsonElement d) ? Bytes(d, "data") : [];
        if (body.TryGetProperty("operation", out JsonElement op))
        {
            if (to is not null || body.TryGetProperty("data", out _))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "a typed operation builds to and data from the venue profile: give neither");
            }

            string opName = op.ValueKind == JsonValueKind.String ? op.GetString()! : throw new ApiException(ProblemTypes.InvalidRequest, "operation must be a string");
            OperationKind kind = Operations.Parse(opName);
            if (kind == OperationKind.Unknown)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "operation is not one of " + string.Join(", ", Operations.Names.Order(StringComparer.Ordinal)));
            }

            string venue = body.TryGetProperty("venue", out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
                : throw new ApiException(ProblemTypes.InvalidRequest, "venue must be a string naming a venue profile");
            JsonElement args = body.TryGetProperty("args", out JsonElement a) && a.ValueKind == JsonValueKind.Object ? a
                : throw new ApiException(ProblemTypes.InvalidRequest, "args must be an object");
            ClassifiedOperation built = venues.Build(kind, venue, args);
            if (built.Operation == OperationKind.Unknown || built.Contract is null || built.ChainId is null)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, built.Reason ?? "the venue profile does not build this operation");
            }

            if (chainId is { } given && given != built.ChainId)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "chainId differs from the venue profile's chain");
            }

            if (built.UnknownFields.Count > 0)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "args has members the operation does not take: " + string.Join(", ", built.UnknownFields));
            }

            to = EthereumAddress.TryParse(built.Contract, out byte[] contract) ? contract : throw new ApiException(ProblemTypes.InvalidRequest, "the venue profile's contract is not an address");

            // "contract", like "chainId", may be given: then it must be the profile's (the caller's expectation checked, never a target).
            if (body.TryGetProperty("contract", out JsonElement named) && !Address(named, "contract").AsSpan().SequenceEqual(contract))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "contract differs from the venue profile's contract");
            }

            chainId = built.ChainId;
            data = built.Calldata;
        }
        else if (body.TryGetProperty("venue", out _) || body.TryGetProperty("args", out _) || body.TryGetProperty("contract", out _))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "venue, contract and args go with operation (a raw transaction names its target in to)");
        }

        if (chainId is null)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "chainId is required");
        }

        if (to is null)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "to is required (contract creation is not offered)");
        }

        bool send = false;
        if (body.TryGetProperty("send", out JsonElement s))
        {
            send = s.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new ApiException(ProblemTypes.InvalidRequest, "send must be true or false"),
            };
        }

        var draft = new TransactionDraft(chainId.Value, to, Quantity(body, "value") ?? BigInteger.Zero, data, Quantity(body, "gas"), Quantity(body, "maxFeePerGas"),
            Quantity(body, "maxPriorityFeePerGas"), Quantity(body, "nonce"));
        if (draft.Nonce is { } n && n >= ulong.MaxValue)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "nonce must be below 2^64-1 (EIP-2681)");
        }

        if (draft.Gas is { } g && g > ulong.MaxValue)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "gas must fit in 64 bits");
        }

        return (draft, send);
    }

    /// <summary>A chain id as a JSON number, a decimal text or a 0x quantity.</summary>
    internal static long ChainIdOf(JsonElement c)
    {
        BigInteger? q = QuantityOf(c, "chainId");
        return q is { } v && v <= 0xFFFF_FFFF_FFFF ? (long)v : throw new ApiException(ProblemTypes.InvalidRequest, "chainId must be an integer from 1 to 281474976710655");
    }

    internal static byte[] Address(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.String && EthereumAddress.TryParse(e.GetString(), out byte[] a) ? a
            : throw new ApiException(ProblemTypes.InvalidRequest, $"{name} must be a 0x-prefixed 20-byte address (a mixed-case one must carry a valid EIP-55 checksum)");

    private static byte[] Bytes(JsonElement e, string name)
    {
        string? s = e.ValueKind == JsonValueKind.String ? e.GetString() : null;
        if (s is null || !s.StartsWith("0x", StringComparison.Ordinal) || s.Length % 2 != 0)
        {
            throw new ApiException(ProblemTypes.BadHex, $"{name} must be 0x-prefixed hex of whole bytes");
        }

        if (s.Length > 2 + (2 * EthereumTransactions.MaxDataBytes))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"{name} is over {EthereumTransactions.MaxDataBytes} bytes");
        }

        try
        {
            return Convert.FromHexString(s.AsSpan(2));
        }
        catch (FormatException)
        {
            throw new ApiException(ProblemTypes.BadHex, $"{name} must be 0x-prefixed hex of whole bytes");
        }
    }

    private static BigInteger? Quantity(JsonElement body, string name) =>
        body.TryGetProperty(name, out JsonElement e) && e.ValueKind != JsonValueKind.Null ? QuantityOf(e, name) : null;

    /// <summary>A non-negative integer below 2^256: a JSON integer, a decimal text or a 0x hex quantity.</summary>
    internal static BigInteger? QuantityOf(JsonElement e, string name)
    {
        BigInteger v = default;
        bool ok;
        if (e.ValueKind == JsonValueKind.Number)
        {
            ok = e.TryGetUInt64(out ulong u);
            v = u;
        }
        else if (e.ValueKind == JsonValueKind.String && e.GetString() is { Length: > 0 and <= 80 } s)
        {
            ok = s.StartsWith("0x", StringComparison.Ordinal)
                ? s.Length > 2 && s.Skip(2).All(char.IsAsciiHexDigit) && BigInteger.TryParse("0" + s[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v)
                : s.All(char.IsAsciiDigit) & BigInteger.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        }
        else
        {
            ok = false;
        }

        return ok && v.Sign >= 0 && v.GetBitLength() <= 256 ? v : throw new ApiException(ProblemTypes.InvalidRequest, $"{name} must be a non-negative integer (number, decimal text or 0x hex)");
    }
}
