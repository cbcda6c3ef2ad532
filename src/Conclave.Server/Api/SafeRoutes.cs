using System.Globalization;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Server.Chains;
using Conclave.Server.Policy;
using Conclave.Storage.Ethereum;
using Conclave.Storage.Keys;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Api;

/// <summary>
/// Safe treasuries (docs/VENUE.md "Safe treasury"): <c>POST /v1/safes</c> registers a Safe 1.4.1 whose owners include
/// Conclave keys, <c>GET /v1/safes</c> and <c>GET /v1/safes/{safe}</c> read registrations, and
/// <c>POST /v1/safes/{safe}/transactions</c> has owner keys sign a SafeTx (through policy) and optionally executes it.
/// The route parameter is <c>{safe}</c>, not <c>{name}</c>: the audit middleware reads <c>{name}</c> as a key's name.
/// </summary>
public static class SafeRoutes
{
    /// <summary>The route string policy decisions and held requests of Safe transactions name.</summary>
    public const string TransactionRoute = "POST /v1/safes/{safe}/transactions";

    private const string DeployRoute = "POST /v1/safes (deploy)";

    private static readonly HashSet<string> s_registerMembers = new(StringComparer.Ordinal) { "name", "chainId", "address", "owners", "threshold", "deploy" };

    private static readonly HashSet<string> s_deployMembers = new(StringComparer.Ordinal) { "deployer", "saltNonce", "singleton", "proxyFactory" };

    private static readonly HashSet<string> s_transactionMembers = new(StringComparer.Ordinal) { "to", "value", "data", "nonce", "signers", "execute", "executor" };

    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapPost("/v1/safes", RegisterAsync).WithName("RegisterSafe").WithTags("v1")
            .Accepts<JsonObject>("application/json").Produces<JsonObject>(201, "application/json")
            .ProducesProblem(400).ProducesProblem(401).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409).ProducesProblem(422).ProducesProblem(502)
            .ProducesProblem(503).ProducesProblem(504);
        app.MapGet("/v1/safes", ListAsync).WithName("ListSafes").WithTags("v1")
            .Produces<JsonObject>(200, "application/json").ProducesProblem(401).ProducesProblem(403);
        app.MapGet("/v1/safes/{safe}", GetAsync).WithName("GetSafe").WithTags("v1")
            .Produces<JsonObject>(200, "application/json").ProducesProblem(401).ProducesProblem(403).ProducesProblem(404);
        // AuditOverlap and AuditOneCommit, as the sign routes: the intent, the first owner signature's decision and its
        // velocity reservation are committed together (Api.RequestAudit); every later decision that reserves commits with
        // its reservation, the rest with the request's next effect; nothing is released (the owner signatures, the
        // execution's broadcast, a held request's 202) before everything held is durable (AuditTrail.RequireIntentAsync).
        app.MapPost("/v1/safes/{safe}/transactions", TransactionAsync).WithName("SafeTransaction").WithTags("v1").WithMetadata(new AuditOverlap(), new AuditOneCommit())
            .Accepts<JsonObject>("application/json").Produces<JsonObject>(200, "application/json").Produces<HeldResponse>(202, "application/json")
            .ProducesProblem(400).ProducesProblem(401).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409)
            .ProducesProblem(422).ProducesProblem(502).ProducesProblem(503).ProducesProblem(504);

        // A Safe transaction held for approval runs here once its approvals are met (docs/VENUE.md "Held owner signatures").
        app.Services.GetRequiredService<ApprovalService>().Register(ApprovalService.SafeRoute, HeldExecutor(app.Services.GetRequiredService<SafeTreasury>()));
    }

    private static async Task RegisterAsync(HttpContext ctx, SafeTreasury safes)
    {
        using JsonDocument doc = await ReadAsync(ctx).ConfigureAwait(false);
        JsonElement body = Members(doc.RootElement, s_registerMembers);
        string name = body.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String && SafeTreasury.IsName(n.GetString())
            ? n.GetString()! : throw new ApiException(ProblemTypes.InvalidRequest, "name must be 1-64 characters from [A-Za-z0-9._:@-]");
        long chainId = body.TryGetProperty("chainId", out JsonElement c) ? EthereumTransactionRoutes.ChainIdOf(c)
            : throw new ApiException(ProblemTypes.InvalidRequest, "chainId is required");
        SafeDeployRequest? deploy = body.TryGetProperty("deploy", out JsonElement dep) ? DeployOf(dep) : null;
        byte[]? address = body.TryGetProperty("address", out JsonElement a) ? EthereumTransactionRoutes.Address(a, "address") : null;
        if ((address is null) == (deploy is null))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "give either address (register a Safe on chain) or deploy (deploy one and register it)");
        }

        List<string> owners = Names(body, "owners");
        int threshold = body.TryGetProperty("threshold", out JsonElement t) && t.ValueKind == JsonValueKind.Number && t.TryGetInt32(out int th) ? th
            : throw new ApiException(ProblemTypes.InvalidRequest, "threshold must be an integer");
        if (deploy is null)
        {
            SafeRecord safe = await safes.RegisterAsync(name, chainId, address!, owners, threshold, ctx.RequestAborted).ConfigureAwait(false);
            await WriteAsync(ctx, 201, await DescribeAsync(safes, safe, ctx.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false);
            return;
        }

        DeployedSafe deployed = await safes.DeployAsync(CallerIdentity.Get(ctx), name, chainId, owners, threshold, deploy, DeployRoute,
            () => AuditTrail.RequireIntentAsync(ctx), ctx.RequestAborted).ConfigureAwait(false);
        JsonObject answer = await DescribeAsync(safes, deployed.Safe, ctx.RequestAborted).ConfigureAwait(false);
        answer["deployment"] = new JsonObject
        {
            ["transaction"] = deployed.Transaction.Hash,
            ["from"] = deployed.Transaction.From,
            ["nonce"] = deployed.Transaction.Nonce.ToString(CultureInfo.InvariantCulture),
            ["block"] = deployed.Block,
            ["saltNonce"] = deployed.SaltNonce.ToString(CultureInfo.InvariantCulture),
            ["singleton"] = deployed.Singleton,
            ["proxyFactory"] = deployed.ProxyFactory,
            ["policy"] = JsonSerializer.SerializeToNode(deployed.Transaction.Policy, ApiJsonContext.Default.PolicyExplanation),
        };
        await WriteAsync(ctx, 201, answer).ConfigureAwait(false);
    }

    /// <summary><c>deploy</c>: <c>{"deployer", "saltNonce"?, "singleton"?, "proxyFactory"?}</c>.</summary>
    private static SafeDeployRequest DeployOf(JsonElement d)
    {
        JsonElement body = Members(d, s_deployMembers, "deploy must be an object");
        string deployer = body.TryGetProperty("deployer", out JsonElement k) && k.ValueKind == JsonValueKind.String && k.GetString() is { Length: > 0 and <= 64 } s ? s
            : throw new ApiException(ProblemTypes.InvalidRequest, "deploy.deployer must name a key");
        BigInteger? salt = body.TryGetProperty("saltNonce", out JsonElement n) ? EthereumTransactionRoutes.QuantityOf(n, "deploy.saltNonce") : null;
        byte[]? singleton = body.TryGetProperty("singleton", out JsonElement a) ? EthereumTransactionRoutes.Address(a, "deploy.singleton") : null;
        byte[]? factory = body.TryGetProperty("proxyFactory", out JsonElement f) ? EthereumTransactionRoutes.Address(f, "deploy.proxyFactory") : null;
        return new SafeDeployRequest(deployer, salt, singleton, factory);
    }

    private static async Task ListAsync(HttpContext ctx, SafeTreasury safes)
    {
        var list = new JsonArray();
        foreach (SafeRecord s in await safes.ListAsync(ctx.RequestAborted).ConfigureAwait(false))
        {
            list.Add(await DescribeAsync(safes, s, ctx.RequestAborted).ConfigureAwait(false));
        }

        await WriteAsync(ctx, 200, new JsonObject { ["safes"] = list }).ConfigureAwait(false);
    }

    private static async Task GetAsync(HttpContext ctx, string safe, SafeTreasury safes)
    {
        SafeRecord record = await safes.GetAsync(safe, ctx.RequestAborted).ConfigureAwait(false);
        await WriteAsync(ctx, 200, await DescribeAsync(safes, record, ctx.RequestAborted).ConfigureAwait(false)).ConfigureAwait(false);
    }

    private static async Task TransactionAsync(HttpContext ctx, string safe, SafeTreasury safes)
    {
        SafeRecord record = await safes.GetAsync(safe, ctx.RequestAborted).ConfigureAwait(false);
        SafeTransactionRequest request;
        using (JsonDocument doc = await ReadAsync(ctx).ConfigureAwait(false))
        {
            JsonElement body = Members(doc.RootElement, s_transactionMembers);
            byte[] to = body.TryGetProperty("to", out JsonElement t) ? EthereumTransactionRoutes.Address(t, "to")
                : throw new ApiException(ProblemTypes.InvalidRequest, "to is required");
            BigInteger value = body.TryGetProperty("value", out JsonElement v) ? EthereumTransactionRoutes.QuantityOf(v, "value") ?? BigInteger.Zero : BigInteger.Zero;
            byte[] data = body.TryGetProperty("data", out JsonElement d) ? Hex(d, "data") : [];
            BigInteger? nonce = body.TryGetProperty("nonce", out JsonElement n) ? EthereumTransactionRoutes.QuantityOf(n, "nonce") : null;
            bool execute = false;
            if (body.TryGetProperty("execute", out JsonElement e))
            {
                execute = e.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw new ApiException(ProblemTypes.InvalidRequest, "execute must be true or false"),
                };
            }

            string? executor = null;
            if (body.TryGetProperty("executor", out JsonElement x))
            {
                executor = x.ValueKind == JsonValueKind.String && x.GetString() is { Length: > 0 and <= 64 } s ? s
                    : throw new ApiException(ProblemTypes.InvalidRequest, "executor must name a key");
            }

            request = new SafeTransactionRequest(to, value, data, nonce, Names(body, "signers"), execute, executor);
        }

        SafeTransactionResult result;
        try
        {
            result = await safes.SignAndExecuteAsync(CallerIdentity.Get(ctx), record, request, TransactionRoute, () => AuditTrail.RequireIntentAsync(ctx), ctx.RequestAborted,
                holdForApproval: true).ConfigureAwait(false);
        }
        catch (HeldForApprovalException held)
        {
            await AuditTrail.RequireIntentAsync(ctx).ConfigureAwait(false);
            ctx.Response.Headers.Location = $"/v1/requests/{held.Held.RequestId}";
            await WriteAsync(ctx, 202, JsonSerializer.SerializeToNode(held.Held, ApiJsonContext.Default.HeldResponse)!.AsObject()).ConfigureAwait(false);
            return;
        }

        await WriteAsync(ctx, 200, Answer(result, request)).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs a held Safe transaction once approved: the stored request (its Safe, call, nonce, signers, executor and
    /// caller) again, the approved decisions not decided again and the others decided now; nothing is signed unless it
    /// still hashes to the approved SafeTx hash. The request's result is what the route would have answered.
    /// </summary>
    internal static HeldRequestExecutor HeldExecutor(SafeTreasury safes) => async (key, body, policy, ct) =>
    {
        using JsonDocument doc = JsonDocument.Parse(body);
        JsonElement h = doc.RootElement;
        string S(string member) => h.GetProperty(member).GetString()!;
        SafeRecord safe = await safes.GetAsync(S("safe"), ct).ConfigureAwait(false);
        if (safe.Address != S("address") || safe.ChainId != h.GetProperty("chainId").GetInt64())
        {
            throw new ApiException(ProblemTypes.SafeMismatch, "the Safe registered under this name is not the one the request was approved for");
        }

        CallerIdentity caller = await safes.CallerAsync(S("principal"), ct).ConfigureAwait(false);
        var request = new SafeTransactionRequest(Convert.FromHexString(S("to").AsSpan(2)), BigInteger.Parse(S("value"), CultureInfo.InvariantCulture),
            Convert.FromHexString(S("data").AsSpan(2)), BigInteger.Parse(S("nonce"), CultureInfo.InvariantCulture),
            [.. h.GetProperty("signers").EnumerateArray().Select(e => e.GetString()!)], h.GetProperty("execute").GetBoolean(),
            h.GetProperty("executor").ValueKind == JsonValueKind.String ? S("executor") : null);
        var approved = new SafeApproval(S("safeTxHash"), h.GetProperty("held").EnumerateArray().Select(e => e.GetString()!).ToHashSet(StringComparer.Ordinal), policy);
        SafeTransactionResult result = await safes.SignAndExecuteAsync(caller, safe, request, TransactionRoute, () => Task.CompletedTask, ct, approved: approved)
            .ConfigureAwait(false);
        return System.Text.Encoding.UTF8.GetBytes(Answer(result, request).ToJsonString());
    };

    /// <summary>The answer to a Safe transaction: the SafeTx, the owners' signatures, the execution and the policy decisions.</summary>
    private static JsonObject Answer(SafeTransactionResult result, SafeTransactionRequest request)
    {
        var signatures = new JsonArray();
        foreach (SafeOwnerSignature s in result.Signatures)
        {
            signatures.Add(new JsonObject { ["key"] = s.Key, ["owner"] = s.Owner, ["signature"] = "0x" + Convert.ToHexStringLower(s.Signature) });
        }

        var policies = new JsonArray();
        foreach (PolicyExplanation p in result.Policy)
        {
            policies.Add(JsonSerializer.SerializeToNode(p, ApiJsonContext.Default.PolicyExplanation));
        }

        JsonObject? execution = result.Execution is { } b ? new JsonObject
        {
            ["hash"] = b.Hash,
            ["from"] = b.From,
            ["nonce"] = b.Nonce.ToString(CultureInfo.InvariantCulture),
            ["raw"] = "0x" + Convert.ToHexStringLower(b.Raw),
            ["sent"] = b.Sent,
            ["policy"] = JsonSerializer.SerializeToNode(b.Policy, ApiJsonContext.Default.PolicyExplanation),
        } : null;
        return new JsonObject
        {
            ["safe"] = result.Safe.Name,
            ["address"] = result.Safe.Address,
            ["chainId"] = result.Safe.ChainId,
            ["nonce"] = result.Nonce.ToString(CultureInfo.InvariantCulture),
            ["safeTxHash"] = "0x" + Convert.ToHexStringLower(result.SafeTxHash),
            ["signatures"] = signatures,
            ["packed"] = "0x" + Convert.ToHexStringLower(result.Packed),
            ["execution"] = execution,
            ["policy"] = policies,
            ["transactionService"] = TransactionServiceExport(result, request),
        };
    }

    /// <summary>
    /// The collected signatures in the Safe Transaction Service's format (docs/VENUE.md "Safe treasury"): the body of its
    /// propose call (<c>POST /api/v1/safes/{address}/multisig-transactions/</c>: the SafeTx fields, its hash as
    /// <c>contractTransactionHash</c>, the first signing owner as <c>sender</c> with its signature) and one confirmation
    /// (<c>POST /api/v1/multisig-transactions/{safeTxHash}/confirmations/</c>: <c>signature</c>) per further owner.
    /// Addresses are EIP-55 checksummed; uint256 values are decimal strings.
    /// </summary>
    private static JsonObject? TransactionServiceExport(SafeTransactionResult result, SafeTransactionRequest request)
    {
        if (result.Signatures.Count == 0)
        {
            return null;
        }

        static string Checksum(string address) => Conclave.Chains.Ethereum.EthereumAddress.ToChecksum(Convert.FromHexString(address.AsSpan(2)));
        const string Zero = "0x0000000000000000000000000000000000000000";
        SafeOwnerSignature sender = result.Signatures[0];
        var confirmations = new JsonArray();
        foreach (SafeOwnerSignature s in result.Signatures.Skip(1))
        {
            confirmations.Add(new JsonObject { ["owner"] = Checksum(s.Owner), ["signature"] = "0x" + Convert.ToHexStringLower(s.Signature) });
        }

        return new JsonObject
        {
            ["proposal"] = new JsonObject
            {
                ["safe"] = Checksum(result.Safe.Address),
                ["to"] = Conclave.Chains.Ethereum.EthereumAddress.ToChecksum(request.To),
                ["value"] = request.Value.ToString(CultureInfo.InvariantCulture),
                ["data"] = request.Data.Length == 0 ? null : "0x" + Convert.ToHexStringLower(request.Data),
                ["operation"] = 0,
                ["safeTxGas"] = "0",
                ["baseGas"] = "0",
                ["gasPrice"] = "0",
                ["gasToken"] = Zero,
                ["refundReceiver"] = Zero,
                ["nonce"] = result.Nonce.ToString(CultureInfo.InvariantCulture),
                ["contractTransactionHash"] = "0x" + Convert.ToHexStringLower(result.SafeTxHash),
                ["sender"] = Checksum(sender.Owner),
                ["signature"] = "0x" + Convert.ToHexStringLower(sender.Signature),
                ["origin"] = "conclave",
            },
            ["confirmations"] = confirmations,
        };
    }

    private static async Task<JsonObject> DescribeAsync(SafeTreasury safes, SafeRecord safe, CancellationToken ct)
    {
        var owners = new JsonArray();
        foreach (KeyRecord k in await safes.OwnerKeysAsync(safe, ct).ConfigureAwait(false))
        {
            owners.Add(new JsonObject { ["key"] = k.Name, ["address"] = Conclave.Chains.Ethereum.EthereumAddress.FromPublicKey(k.PublicKey) });
        }

        return new JsonObject
        {
            ["name"] = safe.Name,
            ["chainId"] = safe.ChainId,
            ["address"] = Conclave.Chains.Ethereum.EthereumAddress.ToChecksum(Convert.FromHexString(safe.Address.AsSpan(2))),
            ["threshold"] = safe.Threshold,
            ["owners"] = owners,
            ["createdAt"] = safe.CreatedAt.ToString("O", CultureInfo.InvariantCulture),
        };
    }

    private static async Task<JsonDocument> ReadAsync(HttpContext ctx)
    {
        try
        {
            return await JsonDocument.ParseAsync(ctx.Request.Body, new JsonDocumentOptions { AllowDuplicateProperties = false }, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException)
        {
            throw new ApiException(ProblemTypes.MalformedJson, "the body is not a JSON object (or a member is given twice)");
        }
    }

    private static JsonElement Members(JsonElement body, HashSet<string> allowed, string? notAnObject = null)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw notAnObject is null ? new ApiException(ProblemTypes.MalformedJson, "the body must be a JSON object") : new ApiException(ProblemTypes.InvalidRequest, notAnObject);
        }

        foreach (JsonProperty p in body.EnumerateObject())
        {
            if (!allowed.Contains(p.Name))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "unknown member " + (p.Name.Length <= 40 ? p.Name : p.Name[..40]));
            }
        }

        return body;
    }

    private static List<string> Names(JsonElement body, string member)
    {
        if (!body.TryGetProperty(member, out JsonElement list) || list.ValueKind != JsonValueKind.Array || list.GetArrayLength() is 0 or > SafeTreasury.MaxOwners)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"{member} must be an array of 1 to {SafeTreasury.MaxOwners} key names");
        }

        var names = new List<string>();
        foreach (JsonElement e in list.EnumerateArray())
        {
            names.Add(e.ValueKind == JsonValueKind.String && e.GetString() is { Length: > 0 and <= 64 } s ? s
                : throw new ApiException(ProblemTypes.InvalidRequest, $"{member} must hold key names (strings of 1 to 64 characters)"));
        }

        return names;
    }

    private static byte[] Hex(JsonElement e, string name)
    {
        string? s = e.ValueKind == JsonValueKind.String ? e.GetString() : null;
        if (s is null || !s.StartsWith("0x", StringComparison.Ordinal) || s.Length % 2 != 0 || !s.Skip(2).All(char.IsAsciiHexDigit))
        {
            throw new ApiException(ProblemTypes.BadHex, $"{name} must be 0x-prefixed hex of whole bytes");
        }

        if (s.Length > 2 + (2 * EthereumTransactions.MaxDataBytes))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"{name} is over {EthereumTransactions.MaxDataBytes} bytes");
        }

        return Convert.FromHexString(s.AsSpan(2));
    }

    private static async Task WriteAsync(HttpContext ctx, int status, JsonObject body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted).ConfigureAwait(false);
    }
}
