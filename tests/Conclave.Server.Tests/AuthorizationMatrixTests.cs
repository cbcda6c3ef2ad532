using System.Net;
using System.Text.Json.Nodes;
using Conclave.Policy.Principals;
using Conclave.Server.Api.Identity;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Conclave.Server.Tests;

/// <summary>
/// Issue 16 "An authorization matrix: every route × every role × in and out of scope". The routes are enumerated from
/// the server's own route table, so a route added without an authorization decision fails here (and is refused to
/// everyone by the middleware). Each /v1 and /rpc route is called by the admin token and by a principal of each role
/// (admin, operator, approver, auditor, agent), once scoped to the key the path names and once scoped away from it:
/// a role the route allows gets past authorization (any answer but 401/403), any other gets 403 problem+json. Scope does
/// not change the role decision (the scope of a signing request is checked by policy at the signing route).
/// </summary>
public sealed class AuthorizationMatrixTests(NodelessServer server) : IClassFixture<NodelessServer>
{
    private static readonly Role[] AllRoles = [Role.Admin, Role.Operator, Role.Approver, Role.Auditor, Role.Agent];

    private static IEnumerable<RouteEndpoint> ApiEndpoints(NodelessServer server) =>
        ((IEndpointRouteBuilder)server.App).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is { } raw && (raw.StartsWith("/v1", StringComparison.Ordinal) || raw.StartsWith("/rpc", StringComparison.Ordinal)));

    [Fact]
    public void Every_api_route_has_an_authorization_decision()
    {
        var endpoints = ApiEndpoints(server).ToList();
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

    [Fact]
    public async Task Every_route_by_every_role_in_and_out_of_scope()
    {
        // Callers: a principal per role and scope, each with its own Ed25519 credential.
        var callers = new List<(string Id, Role Role, bool InScope, TestSigner Signer)>();
        foreach (Role role in AllRoles)
        {
            foreach (bool inScope in new[] { true, false })
            {
                string id = $"m-{Roles.Name(role)}-{(inScope ? "in" : "out")}";
                string kind = role == Role.Agent ? "agent" : "person";
                string scope = inScope ? """{"keys":["k-in"],"operations":["*"]}""" : """{"keys":["k-other"],"operations":["transfer"]}""";
                var (status, _, text, _) = await server.SendAsync(HttpMethod.Post, "/v1/principals", $$"""{"id":"{{id}}","kind":"{{kind}}","roles":["{{Roles.Name(role)}}"],"scope":{{scope}}}""");
                Assert.True(status == HttpStatusCode.Created, text);
                var signer = TestSigner.Ed25519(id + "-key");
                (status, _, text, _) = await server.SendAsync(HttpMethod.Post, $"/v1/principals/{id}/credentials",
                    $$"""{"keyId":"{{signer.KeyId}}","algorithm":"ed25519","publicKey":"{{signer.PublicKeyBase64}}"}""");
                Assert.True(status == HttpStatusCode.Created, text);
                callers.Add((id, role, inScope, signer));
            }
        }

        var failures = new List<string>();
        int checkedCalls = 0;
        using var anonymous = new HttpClient();
        foreach (RouteEndpoint e in ApiEndpoints(server).OrderBy(x => RouteAuthorization.Key(x), StringComparer.Ordinal))
        {
            string key = RouteAuthorization.Key(e)!;
            string method = key[..key.IndexOf(' ', StringComparison.Ordinal)];
            IReadOnlySet<Role> allowed = e.Metadata.GetMetadata<AllowedRoles>()?.Roles ?? RouteAuthorization.Table[key].ToHashSet();
            bool credentialRoute = key.Contains("{keyId}", StringComparison.Ordinal);

            // The admin token.
            {
                string path = Fill(e.RoutePattern.RawText!, "ghost", "nope-key");
                var (status, _, text, _) = await server.SendAsync(new HttpMethod(method), path, method is "POST" or "PUT" ? "{}" : null);
                checkedCalls++;
                Check(failures, $"admin token {key}", allowed.Contains(Role.Admin), status, text);
            }

            foreach (var (id, role, inScope, signer) in callers)
            {
                // Credential routes: the caller's own principal (allowed to every role) and another's (admin only).
                foreach (bool own in credentialRoute ? new[] { true, false } : new[] { false })
                {
                    string path = Fill(e.RoutePattern.RawText!, own ? id : "ghost", "nope-key");
                    using HttpRequestMessage req = signer.Request(new HttpMethod(method), server.BaseUrl + path, method is "POST" or "PUT" ? "{}" : null);
                    using HttpResponseMessage r = await anonymous.SendAsync(req);
                    string text = await r.Content.ReadAsStringAsync();
                    checkedCalls++;
                    bool expected = allowed.Contains(role) && (!credentialRoute || own || role == Role.Admin);
                    Check(failures, $"{id} ({(inScope ? "in" : "out of")} scope){(credentialRoute ? own ? " own" : " other's" : "")} {key}", expected, r.StatusCode, text);
                }
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {checkedCalls} calls decided wrongly:\n" + string.Join("\n", failures));
        foreach (var c in callers)
        {
            c.Signer.Dispose();
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

    /// <summary>The path with its parameters filled: key k-in (in the in-scope callers' scope), node 99, version 1, the given principal and key id.</summary>
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
