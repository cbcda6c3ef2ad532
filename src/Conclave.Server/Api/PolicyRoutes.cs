using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Policy.Documents;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Risk;
using Conclave.Policy.Venues;
using Conclave.Server.Api.Identity;
using Conclave.Server.Config;
using Conclave.Server.Policy;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Policy;
using Conclave.Storage.Requests;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Conclave.Server.Api;

/// <summary>
/// <c>/v1/policies</c> (put, get, list, evaluate) and <c>/v1/requests</c> (held requests and their votes), issue 16;
/// docs/API.md "Policies" and "Approvals". Bodies are read as JSON and checked field by field: an unknown field, a
/// wrong type or a bad document is a 400 problem naming the field.
/// </summary>
public static class PolicyRoutes
{
    private const int MaxDocumentBytes = 512 * 1024;

    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);

        app.MapPut("/v1/policies/{id}", async Task<IResult> (HttpContext ctx, string id, string? mode, ApprovalService approvals, ServerConfig config, CancellationToken ct) =>
        {
            // A policy change is held for approval (docs/POLICY.md "Changing policies"): classified as a tightening
            // (one approver) or a loosening (a quorum, then a time lock), stored once approved.
            CallerIdentity caller = RouteAuthorization.Require(ctx, Role.Admin);
            PolicyMode m = mode switch
            {
                null or "enforce" => PolicyMode.Enforce,
                "shadow" => PolicyMode.Shadow,
                _ => throw new ApiException(ProblemTypes.InvalidRequest, "query parameter 'mode' must be enforce or shadow"),
            };
            string text = await ReadBodyAsync(ctx, ct).ConfigureAwait(false);
            PolicyDocument doc = PolicyDocument.Parse(text);
            if (doc.Id != id)
            {
                throw new ApiException(ProblemTypes.InvalidPolicy, "the document's id is not the one in the path");
            }

            JsonObject held = await approvals.HoldPolicyChangeAsync(caller, doc, m, text, config.PolicyChanges ?? new PolicyChangeSettings(), ct).ConfigureAwait(false);
            ctx.Response.Headers.Location = "/v1/requests/" + held["requestId"]!.GetValue<string>();
            return Json(held, 202);
        }).WithName("PutPolicy").WithTags("v1");

        app.MapGet("/v1/policies", async Task<IResult> (PolicyEngine engine, CancellationToken ct) =>
        {
            IReadOnlyList<StoredPolicy> all = await engine.Store.Policies.ListAsync(ct).ConfigureAwait(false);
            return Json(new JsonObject { ["policies"] = new JsonArray([.. all.Select(p => (JsonNode)Summary(p))]) });
        }).WithName("ListPolicies").WithTags("v1");

        app.MapGet("/v1/policies/{id}", async Task<IResult> (string id, string? version, PolicyEngine engine, CancellationToken ct) =>
        {
            long? v = VersionQuery(version);
            StoredPolicy p = await engine.Store.Policies.GetAsync(id, v, ct).ConfigureAwait(false)
                ?? throw new ApiException(ProblemTypes.NotFound, v is null ? $"no policy {id}" : $"policy {id} has no version {v}");
            JsonObject o = Summary(p);
            o["document"] = JsonNode.Parse(p.Document);
            return Json(o);
        }).WithName("GetPolicy").WithTags("v1");

        app.MapPost("/v1/policies/evaluate", async Task<IResult> (HttpContext ctx, KeyService keys, PolicyEngine engine, VenueProfileSource venueProfiles, IRiskLevelSource risk,
            TimeProvider time, CancellationToken ct) =>
        {
            CallerIdentity caller = CallerIdentity.Get(ctx);
            using JsonDocument body = await ReadJsonAsync(ctx, ct).ConfigureAwait(false);
            JsonElement root = body.RootElement;
            Allow(root, "key", "operation", "level", "venue", "args", "chainId", "contract", "amount", "typedData");
            VenueRegistry venues = await venueProfiles.CurrentAsync(ct).ConfigureAwait(false);
            string keyName = Str(root, "key") ?? throw new ApiException(ProblemTypes.InvalidRequest, "key is required");
            KeyRecord key = await keys.GetAsync(keyName, ct).ConfigureAwait(false);
            OperationRequest request;
            if (root.TryGetProperty("typedData", out JsonElement typed))
            {
                // An eth_signTypedData_v4 document, classified as /rpc would classify it (a venue operation or typed-data).
                if (new[] { "operation", "venue", "args", "chainId", "contract", "amount" }.Any(f => root.TryGetProperty(f, out _)))
                {
                    throw new ApiException(ProblemTypes.InvalidRequest, "typedData is evaluated on its own: the operation, venue, chain, contract and arguments come from the document");
                }

                request = typed.ValueKind == JsonValueKind.Object
                    ? SigningOperations.ForTypedData(caller.Principal, key, typed, venues)
                    : throw new ApiException(ProblemTypes.InvalidRequest, "typedData must be an EIP-712 document (an object with types, primaryType, domain and message)");
            }
            else
            {
                request = EvaluationRequest(caller.Principal, key, root, venues);
            }
            RiskLevel[] levels = Str(root, "level") is { } l
                ? [RiskLevels.TryParse(l, out RiskLevel one) ? one : throw new ApiException(ProblemTypes.InvalidRequest, "level must be normal, elevated, stressed or lockdown")]
                : [.. RiskLevels.All];
            var result = new JsonObject
            {
                ["operation"] = Operations.Name(request.Operation),
                ["currentLevel"] = RiskLevels.Name(risk.Current.Level),
            };
            var byLevel = new JsonObject();
            IReadOnlyList<LoadedPolicy> policies = await engine.LoadAsync(ct).ConfigureAwait(false);
            DateTimeOffset now = time.GetUtcNow();
            IReadOnlyDictionary<string, decimal> prices = risk.FreshUsdPrices(now);
            foreach (RiskLevel level in levels)
            {
                ServerDecision d = await engine.DecideAsync(request, level, now, ct, policies, usdPrices: prices).ConfigureAwait(false);
                byLevel[RiskLevels.Name(level)] = JsonSerializer.SerializeToNode(PolicyGate.Explain(d), ApiJsonContext.Default.PolicyExplanation);
            }

            result["levels"] = byLevel;
            return Json(result);
        }).WithName("EvaluatePolicy").WithTags("v1");

        app.MapGet("/v1/requests", async Task<IResult> (HttpContext ctx, string? status, ApprovalService approvals, CancellationToken ct) =>
        {
            string? onlyOf = OwnRequestsOnly(CallerIdentity.Get(ctx));
            RequestState? state = status is null ? null
                : Enum.TryParse(status, ignoreCase: true, out RequestState s) && status.All(char.IsAsciiLetterLower) ? s
                : throw new ApiException(ProblemTypes.InvalidRequest, "query parameter 'status' must be pending, approved, rejected, executed, failed or expired");
            IReadOnlyList<JsonObject> list = await approvals.ListAsync(state, onlyOf, ct).ConfigureAwait(false);
            return Json(new JsonObject { ["requests"] = new JsonArray([.. list]) });
        }).WithName("ListRequests").WithTags("v1");

        app.MapGet("/v1/requests/{id}", async Task<IResult> (HttpContext ctx, string id, ApprovalService approvals, CancellationToken ct) =>
        {
            // An agent sees only the requests it made; another's is "no request" (404, as for an id that does not
            // exist), so request ids do not leak between agents.
            string? onlyOf = OwnRequestsOnly(CallerIdentity.Get(ctx));
            JsonObject? r = await approvals.GetAsync(id, ct).ConfigureAwait(false);
            return r is not null && (onlyOf is null || r["requester"]?.GetValue<string>() == onlyOf)
                ? Json(r)
                : throw new ApiException(ProblemTypes.NotFound, $"no request {id}");
        }).WithName("GetRequest").WithTags("v1");

        app.MapPost("/v1/requests/{id}/approve", (HttpContext ctx, string id, ApprovalService approvals, CancellationToken ct) => VoteAsync(ctx, id, true, approvals, ct))
            .WithName("ApproveRequest").WithTags("v1");
        app.MapPost("/v1/requests/{id}/reject", (HttpContext ctx, string id, ApprovalService approvals, CancellationToken ct) => VoteAsync(ctx, id, false, approvals, ct))
            .WithName("RejectRequest").WithTags("v1");
    }

    /// <summary>
    /// The principal whose requests alone <paramref name="caller"/> may see: an agent (a principal whose only role is
    /// agent) sees its own; people with another role see every request (null).
    /// </summary>
    internal static string? OwnRequestsOnly(CallerIdentity caller) =>
        caller.Principal.RoleSet.All(r => r == Role.Agent) ? caller.Principal.Id : null;

    private static async Task<IResult> VoteAsync(HttpContext ctx, string id, bool approve, ApprovalService approvals, CancellationToken ct)
    {
        CallerIdentity caller = CallerIdentity.Get(ctx);
        string text = await ReadBodyAsync(ctx, ct).ConfigureAwait(false);
        string? requestHash, policyHash;
        try
        {
            using JsonDocument body = JsonDocument.Parse(text, new JsonDocumentOptions { AllowDuplicateProperties = false });
            Allow(body.RootElement, "requestHash", "policyHash");
            requestHash = Str(body.RootElement, "requestHash");
            policyHash = Str(body.RootElement, "policyHash");
        }
        catch (JsonException)
        {
            throw new ApiException(ProblemTypes.MalformedJson, "the request body is not a JSON object");
        }

        // The evidence of the vote: what was sent, and how it was authenticated (the RFC 9421 headers when signed).
        var evidence = new JsonObject
        {
            ["method"] = ctx.Request.Method,
            ["path"] = ctx.Request.Path.Value,
            ["body"] = text,
            ["auth"] = caller.Method.ToString(),
            ["credentialId"] = caller.CredentialId,
            ["signature"] = ctx.Request.Headers["Signature"].ToString(),
            ["signatureInput"] = ctx.Request.Headers["Signature-Input"].ToString(),
            ["contentDigest"] = ctx.Request.Headers["Content-Digest"].ToString(),
        };
        JsonObject r = await approvals.VoteAsync(caller, id, approve, requestHash, policyHash, Encoding.UTF8.GetBytes(evidence.ToJsonString()), ct).ConfigureAwait(false);
        return Json(r);
    }

    /// <summary>The request POST /v1/policies/evaluate describes, for the caller and the key.</summary>
    private static OperationRequest EvaluationRequest(Principal principal, KeyRecord key, JsonElement root, VenueRegistry venues)
    {
        string opName = Str(root, "operation") ?? throw new ApiException(ProblemTypes.InvalidRequest, "operation is required");
        OperationKind kind = Operations.Parse(opName);
        if (kind == OperationKind.Unknown && opName != "unknown")
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "operation is not one of " + string.Join(", ", Operations.Names.Order(StringComparer.Ordinal)));
        }

        JsonElement args = root.TryGetProperty("args", out JsonElement a) ? a : default;
        if (args.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Object))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "args must be an object");
        }

        if (Str(root, "venue") is { } venue)
        {
            using JsonDocument empty = JsonDocument.Parse("{}");
            ClassifiedOperation c = venues.Build(kind, venue, args.ValueKind == JsonValueKind.Object ? args : empty.RootElement);
            return c.ToRequest(principal, key.Id, PolicyGate.Labels(key));
        }

        var values = new Dictionary<string, PolicyValue>(StringComparer.Ordinal);
        if (args.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty p in args.EnumerateObject())
            {
                values[p.Name] = p.Value.ValueKind switch
                {
                    JsonValueKind.Number when p.Value.TryGetDecimal(out decimal d) => PolicyValue.Of(d),
                    JsonValueKind.True => PolicyValue.Of(true),
                    JsonValueKind.False => PolicyValue.Of(false),
                    JsonValueKind.String => PolicyValue.OfAddress(p.Value.GetString()!) ?? PolicyValue.OfText(p.Value.GetString()!),
                    _ => throw new ApiException(ProblemTypes.InvalidRequest, "args values must be numbers, booleans or strings"),
                };
            }
        }

        long? chainId = root.TryGetProperty("chainId", out JsonElement ch)
            ? ch.ValueKind == JsonValueKind.Number && ch.TryGetInt64(out long n) && n > 0 ? n : throw new ApiException(ProblemTypes.InvalidRequest, "chainId must be a positive integer")
            : null;
        string? contract = null;
        if (Str(root, "contract") is { } ct)
        {
            contract = PolicyValue.TryNormalizeAddress(ct, out string norm) ? norm : throw new ApiException(ProblemTypes.InvalidRequest, "contract must be 0x and 40 hex digits");
        }

        decimal? amount = root.TryGetProperty("amount", out JsonElement am)
            ? am.ValueKind == JsonValueKind.Number && am.TryGetDecimal(out decimal x) ? x : throw new ApiException(ProblemTypes.InvalidRequest, "amount must be a number")
            : null;
        return SigningOperations.Request(principal, key, kind, chainId, contract) with { Args = values, Amount = amount };
    }

    private static JsonObject Summary(StoredPolicy p) => new()
    {
        ["id"] = p.Id,
        ["version"] = p.Version,
        ["hash"] = p.Hash,
        ["mode"] = p.Mode == PolicyMode.Enforce ? "enforce" : "shadow",
        ["createdBy"] = p.CreatedBy,
        ["createdAt"] = p.CreatedAt,
    };

    /// <summary>The <c>version</c> query parameter: absent (null) or a positive integer (else 400).</summary>
    internal static long? VersionQuery(string? version) =>
        version is null ? null
            : long.TryParse(version, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n) && n >= 1 ? n
            : throw new ApiException(ProblemTypes.InvalidRequest, "query parameter 'version' must be a positive integer");

    internal static IResult Json(JsonNode node, int status = 200) => Results.Content(node.ToJsonString(), "application/json", Encoding.UTF8, status);

    internal static async Task<string> ReadBodyAsync(HttpContext ctx, CancellationToken ct)
    {
        using var reader = new StreamReader(ctx.Request.Body, Encoding.UTF8);
        char[] buffer = new char[MaxDocumentBytes + 1];
        int total = 0;
        int n;
        while (total <= MaxDocumentBytes && (n = await reader.ReadAsync(buffer.AsMemory(total), ct).ConfigureAwait(false)) > 0)
        {
            total += n;
        }

        if (total > MaxDocumentBytes)
        {
            throw new ApiException(ProblemTypes.BodyTooLarge, $"the body exceeds {MaxDocumentBytes} bytes");
        }

        return new string(buffer, 0, total);
    }

    private static async Task<JsonDocument> ReadJsonAsync(HttpContext ctx, CancellationToken ct)
    {
        string text = await ReadBodyAsync(ctx, ct).ConfigureAwait(false);
        try
        {
            JsonDocument d = JsonDocument.Parse(text, new JsonDocumentOptions { AllowDuplicateProperties = false, MaxDepth = 32 });
            if (d.RootElement.ValueKind != JsonValueKind.Object)
            {
                d.Dispose();
                throw new ApiException(ProblemTypes.MalformedJson, "the request body must be a JSON object");
            }

            return d;
        }
        catch (JsonException)
        {
            throw new ApiException(ProblemTypes.MalformedJson, "the request body is not valid JSON (or gives a field twice)");
        }
    }

    private static void Allow(JsonElement o, params string[] names)
    {
        if (o.ValueKind != JsonValueKind.Object)
        {
            throw new ApiException(ProblemTypes.MalformedJson, "the request body must be a JSON object");
        }

        foreach (JsonProperty p in o.EnumerateObject())
        {
            if (!names.Contains(p.Name, StringComparer.Ordinal))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, p.Name.Length <= 64 && p.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-')
                    ? $"unknown field '{p.Name}': this operation does not accept it"
                    : "the request body has a field this operation does not accept");
            }
        }
    }

    private static string? Str(JsonElement o, string name) =>
        !o.TryGetProperty(name, out JsonElement v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString() : throw new ApiException(ProblemTypes.InvalidRequest, $"{name} must be a string");
}
