using System.Net;
using System.Text.Json.Nodes;
using Conclave.Policy.Principals;
using Conclave.Server.Api;
using Conclave.Server.Api.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

using static Conclave.Server.Tests.PolicyEnforcementTests;

namespace Conclave.Server.Tests;

/// <summary>
/// Issue 16 "An authorization matrix: every route × every role × in and out of scope". The routes are enumerated from
/// the server's own route table, so a route added without an authorization decision fails here (and is refused to
/// everyone by the middleware). Each /v1 and /rpc route is called by the admin token and by a principal of each role
/// (admin, operator, approver, auditor, agent), once scoped to the real key the path names (k-in) and once scoped to
/// another real key only (k-out): a role the route allows gets past authorization (any answer but 401/403), any other
/// gets 403 problem+json. Scope does not change the role decision; it is checked by policy at the signing routes
/// (sign, sign/batch, /rpc signing methods, Ethereum transactions), where an allowed role in scope is signed for and
/// out of scope is denied "out of scope" and audited.
/// </summary>
public sealed class AuthorizationMatrixTests
{
    private static readonly Role[] AllRoles = [Role.Admin, Role.Operator, Role.Approver, Role.Auditor, Role.Agent];

    private static IEnumerable<RouteEndpoint> ApiEndpoints(WebApplication app) =>
        ((IEndpointRouteBuilder)app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is { } raw && (raw.StartsWith("/v1", StringComparison.Ordinal) || raw.StartsWith("/rpc", StringComparison.Ordinal)));

    [Fact]
    public async Task Every_api_route_has_an_authorization_decision()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        var endpoints = ApiEndpoints(s.App).ToList();
        Assert.True(endpoints.Count >= 30, $"only {endpoints.Count} routes found");
        foreach (RouteEndpoint e in endpoints)
        {
            string? key = RouteAuthorization.Key(e);
            Assert.True(key is not null, $"route {e.RoutePattern.RawText} is not a single-method route");
            Assert.True(RouteAuthorization.Table.ContainsKey(key!) || e.Metadata.GetMetadata<AllowedRoles>() is not null,
                $"route {key} has no authorization decision (routes: {string.Join(", ", endpoints.Select(RouteAuthorization.Key))})");
        }

        // And no row of the table is stale (names a route that does not exist).
        var keys = endpoints.Select(RouteAuthorization.Key).ToHashSet();
        Assert.All(RouteAuthorization.Table.Keys, k => Assert.Contains(k, keys));
    }

    /// <summary>The routes that sign, each called with a request that reaches policy (a raw digest, a personal_sign, a plain transfer signed without sending).</summary>
    private static readonly string[] SigningRoutes =
    [
        "POST /rpc", "POST /v1/keys/{name}/ethereum/transactions", "POST /v1/keys/{name}/sign", "POST /v1/keys/{name}/sign/batch",
    ];

    /// <summary>
    /// Two real keys: k-in (named in every path, in the in-scope callers' scope) and k-out (the only key of the
    /// out-of-scope callers). A policy lets every caller sign with both keys, so on the signing routes scope alone
    /// decides: a caller whose role may sign is signed for in scope and refused out of scope (403 policy-denied "out of
    /// scope"; on a batch item and on /rpc the same decision in its slot), and each of those refusals is a
    /// <c>policy.decide</c> deny in the audit log under the caller's name.
    /// </summary>
    [Fact]
    public async Task Every_route_by_every_role_in_and_out_of_scope()
    {
        // The transaction route needs an upstream for its chain; it is never called (fees and nonce given, not sent).
        await using PolicyServer s = await PolicyServer.StartAsync(c => c.Upstreams = new() { ["1"] = "http://127.0.0.1:9" });
        (string inId, string inAddress) = await NamedKeyAsync(s, "k-in");
        (string outId, _) = await NamedKeyAsync(s, "k-out");

        // Callers: a principal per role and scope, each with its own Ed25519 credential.
        var callers = new List<(string Id, Role Role, bool InScope, TestSigner Signer)>();
        foreach (Role role in AllRoles)
        {
            foreach (bool inScope in new[] { true, false })
            {
                string id = $"m-{Roles.Name(role)}-{(inScope ? "in" : "out")}";
                string kind = role == Role.Agent ? "agent" : "person";
                var r = await SendAsync(s.Http, HttpMethod.Post, "/v1/principals",
                    $$$"""{"id":"{{{id}}}","kind":"{{{kind}}}","roles":["{{{Roles.Name(role)}}}"],"scope":{"keys":["{{{(inScope ? inId : outId)}}}"],"operations":["*"]}}""");
                Assert.True(r.Status == HttpStatusCode.Created, r.Text);
                var signer = TestSigner.Ed25519(id + "-key");
                r = await SendAsync(s.Http, HttpMethod.Post, $"/v1/principals/{id}/credentials",
                    $$"""{"keyId":"{{signer.KeyId}}","algorithm":"ed25519","publicKey":"{{signer.PublicKeyBase64}}"}""");
                Assert.True(r.Status == HttpStatusCode.Created, r.Text);
                callers.Add((id, role, inScope, signer));
            }
        }

        string everyone = string.Join(",", callers.Select(c => $"\"{c.Id}\"").Append("\"admin\""));
        await PutPolicyAsync(s, $$$"""
            {"id":"starter","version":2,"rules":[
              {"id":"raw","effect":"allow","match":{"principals":[{{{everyone}}}],"operations":["raw-digest"],"keys":["{{{inId}}}","{{{outId}}}"]}},
              {"id":"signs","effect":"allow","match":{"principals":[{{{everyone}}}],"operations":["message","transfer"]}}]}
            """);

        var failures = new List<string>();
        int checkedCalls = 0;
        using var anonymous = new HttpClient();
        foreach (RouteEndpoint e in ApiEndpoints(s.App).OrderBy(x => RouteAuthorization.Key(x), StringComparer.Ordinal))
        {
            string key = RouteAuthorization.Key(e)!;
            string method = key[..key.IndexOf(' ', StringComparison.Ordinal)];
            IReadOnlySet<Role> allowed = e.Metadata.GetMetadata<AllowedRoles>()?.Roles ?? RouteAuthorization.Table[key].ToHashSet();
            bool credentialRoute = key.Contains("{keyId}", StringComparison.Ordinal);
            bool signing = SigningRoutes.Contains(key);
            string? body = signing ? SigningBody(key, inAddress) : method is "POST" or "PUT" ? "{}" : null;

            // The admin token (scoped to everything).
            {
                string path = Fill(e.RoutePattern.RawText!, "ghost", "nope-key");
                var (status, _, text) = await SendAsync(s.Http, new HttpMethod(method), path, body);
                checkedCalls++;
                if (signing)
                {
                    CheckSigning(failures, $"admin token {key}", key, allowed.Contains(Role.Admin) ? Signed : Forbidden, status, text);
                }
                else
                {
                    Check(failures, $"admin token {key}", allowed.Contains(Role.Admin), status, text);
                }
            }

            foreach (var (id, role, inScope, signer) in callers)
            {
                // Credential routes: the caller's own principal (allowed to every role) and another's (admin only).
                foreach (bool own in credentialRoute ? new[] { true, false } : new[] { false })
                {
                    string path = Fill(e.RoutePattern.RawText!, own ? id : "ghost", "nope-key");
                    using HttpRequestMessage req = signer.Request(new HttpMethod(method), "http://" + s.Config.Listen + path, body);
                    using HttpResponseMessage r = await anonymous.SendAsync(req);
                    string text = await r.Content.ReadAsStringAsync();
                    checkedCalls++;
                    string who = $"{id} ({(inScope ? "in" : "out of")} scope){(credentialRoute ? own ? " own" : " other's" : "")} {key}";
                    if (signing)
                    {
                        CheckSigning(failures, who, key, !allowed.Contains(role) ? Forbidden : inScope ? Signed : OutOfScope, r.StatusCode, text);
                    }
                    else
                    {
                        Check(failures, who, allowed.Contains(role) && (!credentialRoute || own || role == Role.Admin), r.StatusCode, text);
                    }
                }
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {checkedCalls} calls decided wrongly:\n" + string.Join("\n", failures));

        // Every out-of-scope refusal is audited as the caller's policy decision, one per signing route (a batch's item).
        List<JsonNode> audit = await AllAuditAsync(s.Http);
        foreach (var c in callers.Where(c => !c.InScope && c.Role is Role.Admin or Role.Agent))
        {
            string[] refusals = [.. audit.Where(x => x["action"]!.GetValue<string>() == "policy.decide" && x["actor"]!.GetValue<string>() == c.Id
                    && x["decision"]!.GetValue<string>() == "deny" && x["keyId"]?.GetValue<string>() == inId)
                .Select(x => x["result"]!.GetValue<string>())];
            Assert.True(refusals.Length == SigningRoutes.Length, $"{c.Id}: {refusals.Length} refusals audited: {string.Join(" | ", refusals)}");
            Assert.All(refusals, r => Assert.Contains($"out of scope: principal {c.Id} is not scoped to key {inId}", r, StringComparison.Ordinal));
        }

        // Nobody in scope, and no role refused before policy, has a denied decision.
        Assert.DoesNotContain(audit, x => x["action"]!.GetValue<string>() == "policy.decide" && x["decision"]!.GetValue<string>() == "deny"
            && callers.Any(c => c.Id == x["actor"]!.GetValue<string>() && (c.InScope || c.Role is not (Role.Admin or Role.Agent))));
        foreach (var c in callers)
        {
            c.Signer.Dispose();
        }
    }

    private const string Signed = "signed", OutOfScope = "out of scope", Forbidden = "forbidden";

    /// <summary>A request of <paramref name="route"/> that reaches policy with key k-in (its Ethereum address <paramref name="address"/>).</summary>
    private static string SigningBody(string route, string address) => route switch
    {
        "POST /v1/keys/{name}/sign" => $$"""{"digest":"{{new string('a', 64)}}"}""",
        "POST /v1/keys/{name}/sign/batch" => $$"""{"items":[{"digest":"{{new string('b', 64)}}"}]}""",
        "POST /rpc" => $$"""{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x68656c6c6f","{{address}}"]}""",
        _ => """{"chainId":1,"to":"0x3535353535353535353535353535353535353535","value":"1","gas":"21000","maxFeePerGas":"2","maxPriorityFeePerGas":"1","nonce":"0","send":false}""",
    };

    /// <summary>What a signing route answered: signed, refused by policy as out of scope, refused by role (403 forbidden), or the answer itself.</summary>
    private static string SigningOutcome(string route, HttpStatusCode status, string text)
    {
        JsonNode? body = JsonNode.Parse(text);
        if (status == HttpStatusCode.Forbidden && body?["type"]?.GetValue<string>() == ProblemTypes.Forbidden)
        {
            return Forbidden;
        }

        // The decision: the answer's own, or a batch item's, or a JSON-RPC error's data.
        (bool ok, JsonNode? denied) = route switch
        {
            "POST /v1/keys/{name}/sign/batch" => (status == HttpStatusCode.OK && body?["results"]?[0]?["result"]?["signature"] is not null,
                status == HttpStatusCode.OK && body?["results"]?[0]?["error"]?["type"]?.GetValue<string>() == ProblemTypes.PolicyDenied ? body["results"]![0]!["error"]!["policy"] : null),
            "POST /rpc" => (status == HttpStatusCode.OK && body?["result"] is not null, body?["error"]?["code"]?.GetValue<int>() == -32001 ? body["error"]!["data"] : null),
            _ => (status == HttpStatusCode.OK && (body?["signature"] ?? body?["raw"]) is not null,
                status == HttpStatusCode.Forbidden && body?["type"]?.GetValue<string>() == ProblemTypes.PolicyDenied ? body["policy"] : null),
        };
        if (ok)
        {
            return Signed;
        }

        return denied?["reasons"]?.AsArray().Any(r => r!.GetValue<string>().StartsWith("out of scope: ", StringComparison.Ordinal)) == true
            ? OutOfScope
            : $"{(int)status} {text}";
    }

    private static void CheckSigning(List<string> failures, string who, string route, string expected, HttpStatusCode status, string text)
    {
        string got = SigningOutcome(route, status, text);
        if (got != expected)
        {
            failures.Add($"{who}: expected {expected}, got {got}");
        }
    }

    private static async Task<(string Id, string Address)> NamedKeyAsync(PolicyServer s, string name)
    {
        var r = await SendAsync(s.Http, HttpMethod.Post, "/v1/keys", $$"""{"name":"{{name}}","scheme":"ecdsa-secp256k1"}""");
        Assert.True(r.Status == HttpStatusCode.Created, r.Text);
        return (r.Body!["id"]!.GetValue<string>(), r.Body!["addresses"]!["ethereum"]!.GetValue<string>());
    }

    /// <summary>Every audit entry up to the last read, in pages of 1,000.</summary>
    private static async Task<List<JsonNode>> AllAuditAsync(HttpClient http)
    {
        var all = new List<JsonNode>();
        long after = 0;
        while (true)
        {
            var page = await SendAsync(http, HttpMethod.Get, $"/v1/audit?after={after}&limit=1000");
            Assert.True(page.Status == HttpStatusCode.OK, page.Text);
            JsonArray entries = page.Body!["entries"]!.AsArray();
            all.AddRange(entries.Select(x => x!));
            if (entries.Count < 1000)
            {
                return all; // each read of the log is itself audited, so a page is never empty: stop at a short one
            }

            after = entries[^1]!["seq"]!.GetValue<long>();
        }
    }

    private static void Check(List<string> failures, string who, bool allowed, HttpStatusCode status, string text)
    {
        // A 403 from policy (policy-denied) or a vote refusal comes after authorization: only 401 and 403 forbidden say
        // the role check refused the call.
        bool refusedByRole = status == HttpStatusCode.Unauthorized
            || (status == HttpStatusCode.Forbidden && JsonNode.Parse(text)?["type"]?.GetValue<string>() == "https://conclave.dev/problems/forbidden");
        if (allowed && refusedByRole)
        {
            failures.Add($"{who}: expected past authorization, got {(int)status} {text}");
        }
        else if (!allowed && (status != HttpStatusCode.Forbidden || JsonNode.Parse(text)?["type"]?.GetValue<string>() != "https://conclave.dev/problems/forbidden"))
        {
            failures.Add($"{who}: expected 403 forbidden, got {(int)status} {text}");
        }
    }

    /// <summary>The path with its parameters filled: key k-in (a real key, in the in-scope callers' scope only), node 99, version 1, the given principal and key id.</summary>
    private static string Fill(string pattern, string principal, string keyId)
    {
        string path = pattern.Replace("{name}", "k-in", StringComparison.Ordinal)
            .Replace("{version}", "1", StringComparison.Ordinal)
            .Replace("{keyId}", keyId, StringComparison.Ordinal)
            .Replace("{safe}", "no-safe", StringComparison.Ordinal)
            .Replace("{venue}", "no-venue", StringComparison.Ordinal)
            .Replace("{hash}", "0x00", StringComparison.Ordinal);
        return path.Replace("{id}", path.StartsWith("/v1/principals", StringComparison.Ordinal) ? principal : path.StartsWith("/v1/admin/nodes", StringComparison.Ordinal) ? "99" : "op-none",
            StringComparison.Ordinal);
    }
}
