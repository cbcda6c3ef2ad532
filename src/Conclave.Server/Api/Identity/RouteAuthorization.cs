using Conclave.Policy.Principals;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Conclave.Server.Api.Identity;

/// <summary>
/// Endpoint metadata naming the roles that may call a route. A route can carry it (<c>.WithMetadata(new AllowedRoles(Role.Approver))</c>)
/// instead of having a row in <see cref="RouteAuthorization"/>'s table; the metadata wins.
/// </summary>
public sealed class AllowedRoles(params Role[] roles)
{
    public IReadOnlySet<Role> Roles { get; } = new HashSet<Role>(roles);
}

/// <summary>
/// Role-based authorization per route (issue 16 "Identities and authentication", docs/POLICY.md "Roles per route"):
/// which roles may call each /v1 and /rpc route, checked by <see cref="ApiMiddleware.UseAuthAndAudit"/> right after
/// authentication and before the handler. A route with no decision (neither a row here nor <see cref="AllowedRoles"/>
/// metadata) is refused to everyone (403): it fails closed, and the authorization matrix test fails for it.
/// Only the role is checked here; whether a key or operation is within the caller's scope is decided where the request
/// is understood (the signing routes' policy enforcement).
/// </summary>
public static class RouteAuthorization
{
    private static readonly Role[] Admin = [Role.Admin];
    private static readonly Role[] AdminOperator = [Role.Admin, Role.Operator];
    private static readonly Role[] Readers = [Role.Admin, Role.Operator, Role.Auditor];
    private static readonly Role[] AuditReaders = [Role.Admin, Role.Auditor];
    private static readonly Role[] Signers = [Role.Admin, Role.Agent];
    private static readonly Role[] Everyone = [Role.Admin, Role.Operator, Role.Approver, Role.Auditor, Role.Agent];
    private static readonly Role[] PolicyReaders = [Role.Admin, Role.Operator, Role.Approver, Role.Auditor];
    private static readonly Role[] Approvers = [Role.Approver];

    /// <summary>"METHOD /route/pattern" → the roles that may call it.</summary>
    public static IReadOnlyDictionary<string, Role[]> Table { get; } = new Dictionary<string, Role[]>(StringComparer.Ordinal)
    {
        // Keys: administration (admin), lifecycle (operator), reads (operator, auditor), signing (agent; admin until policy decides).
        ["POST /v1/keys"] = Admin,
        ["GET /v1/keys"] = Readers,
        ["GET /v1/keys/{name}"] = Readers,
        ["GET /v1/keys/{name}/versions"] = Readers,
        ["POST /v1/keys/{name}/sign"] = Signers,
        ["POST /v1/keys/{name}/sign/batch"] = Signers,
        ["POST /v1/keys/{name}/ethereum/transactions"] = Signers,
        ["POST /v1/keys/{name}/ethereum/transactions/{hash}/replace"] = Signers,

        // Safe treasuries (issue 17): registration is administration; reads for operators and auditors; owner signatures
        // and execution go through policy like any signature.
        ["POST /v1/safes"] = Admin,
        ["GET /v1/safes"] = Readers,
        ["GET /v1/safes/{safe}"] = Readers,
        ["POST /v1/safes/{safe}/transactions"] = Signers,
        ["POST /v1/keys/{name}/derive"] = Readers,
        ["POST /v1/keys/{name}/refresh"] = AdminOperator,
        ["POST /v1/keys/{name}/reshare"] = AdminOperator,
        ["POST /v1/keys/{name}/repair"] = AdminOperator,
        ["GET /v1/operations/{id}"] = Readers,
        ["GET /v1/operations/{id}/transcript"] = Readers,
        ["GET /v1/keys/{name}/versions/{version}/transcript"] = Readers,
        ["GET /v1/keys/{name}/rotation-schedule"] = Readers,
        ["PUT /v1/keys/{name}/rotation-schedule"] = AdminOperator,
        ["DELETE /v1/keys/{name}/rotation-schedule"] = AdminOperator,
        ["POST /v1/cluster/resync"] = AdminOperator,

        // Audit: read-only, for auditors.
        ["GET /v1/audit"] = AuditReaders,
        ["GET /v1/audit/verify"] = AuditReaders,
        ["POST /v1/admin/audit/rotate-key"] = Admin,

        // Nodes: reads for operators and auditors; eviction is administration.
        ["GET /v1/admin/nodes"] = Readers,
        ["GET /v1/admin/nodes/{id}"] = Readers,
        ["POST /v1/admin/nodes/{id}/evict"] = Admin,
        ["POST /v1/admin/nodes/{id}/readmit"] = Admin,

        // Principals: administration; a principal renews and revokes its own credentials (the handler checks whose).
        ["POST /v1/principals"] = Admin,
        ["GET /v1/principals"] = Admin,
        ["GET /v1/principals/{id}"] = Admin,
        ["POST /v1/principals/{id}/disable"] = Admin,
        ["POST /v1/principals/{id}/enable"] = Admin,
        ["POST /v1/principals/{id}/credentials"] = Admin,
        ["POST /v1/principals/{id}/credentials/{keyId}/renew"] = Everyone,
        ["POST /v1/principals/{id}/credentials/{keyId}/revoke"] = Everyone,

        // Ethereum JSON-RPC: accounts, reads and signing.
        ["POST /rpc"] = Signers,

        // On-demand rotation (docs/ROTATION.md "Continuous rotation"): the operators' tool, like refresh.
        ["POST /v1/keys/{name}/rotate"] = AdminOperator,

        // Policies and held requests (docs/POLICY.md "Enforcement", "Approvals"). Putting a policy is administration;
        // reading and evaluating them is for the people who run and review the venue. An agent polls the requests it
        // made (GET /v1/requests and /v1/requests/{id} show an agent only its own; another's is 404); votes need the
        // role approver (the handler also refuses the initiator).
        ["PUT /v1/policies/{id}"] = Admin,
        ["GET /v1/policies"] = PolicyReaders,
        ["GET /v1/policies/{id}"] = PolicyReaders,
        ["POST /v1/policies/evaluate"] = PolicyReaders,
        // Venue profiles (docs/POLICY.md "Venue profiles in the store") are read and changed like policies.
        ["PUT /v1/venue-profiles/{venue}"] = Admin,
        ["GET /v1/venue-profiles"] = PolicyReaders,
        ["GET /v1/venue-profiles/{venue}"] = PolicyReaders,
        ["GET /v1/requests"] = Everyone,
        ["GET /v1/requests/{id}"] = Everyone,
        ["POST /v1/requests/{id}/approve"] = Approvers,
        ["POST /v1/requests/{id}/reject"] = Approvers,
    };

    /// <summary>The roles that may call the endpoint of this request, or null when the route has no decision.</summary>
    public static IReadOnlySet<Role>? RolesFor(HttpContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        Endpoint? endpoint = ctx.GetEndpoint();
        if (endpoint?.Metadata.GetMetadata<AllowedRoles>() is { } allowed)
        {
            return allowed.Roles;
        }

        return Key(endpoint) is { } key && Table.TryGetValue(key, out Role[]? roles) ? new HashSet<Role>(roles) : null;
    }

    /// <summary>The table key of an endpoint ("POST /v1/keys/{name}/sign"), or null for one that is not a single-method route.</summary>
    public static string? Key(Endpoint? endpoint)
    {
        if (endpoint is not RouteEndpoint route || route.RoutePattern.RawText is not { } raw)
        {
            return null;
        }

        IReadOnlyList<string>? methods = endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods;
        string path = raw.StartsWith('/') ? raw : "/" + raw;
        if (path.Length > 1 && path.EndsWith('/'))
        {
            path = path[..^1]; // a group's own route ("/v1/principals" + "")
        }

        return methods is { Count: 1 } ? $"{methods[0]} {path}" : null;
    }

    /// <summary>True when the fallback (no route matched; it only answers 404 or 405) handles the request.</summary>
    public static bool IsFallback(HttpContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        return ctx.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: "{*path:nonfile}" } or null;
    }

    /// <summary>True when the caller holds one of the roles.</summary>
    public static bool Allows(CallerIdentity caller, IReadOnlySet<Role> roles)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(roles);
        return caller.Principal.RoleSet.Overlaps(roles);
    }

    /// <summary>
    /// For handlers that decide more finely than the route (for example the approval routes: only approvers vote):
    /// throws the 403 problem unless the caller holds one of <paramref name="roles"/>.
    /// </summary>
    public static CallerIdentity Require(HttpContext ctx, params Role[] roles)
    {
        CallerIdentity caller = CallerIdentity.Get(ctx);
        if (!Allows(caller, new HashSet<Role>(roles)))
        {
            throw Forbidden(caller, $"this needs the role {string.Join(" or ", roles.Select(Roles.Name))}");
        }

        return caller;
    }

    public static ApiException Forbidden(CallerIdentity caller, string why)
    {
        ArgumentNullException.ThrowIfNull(caller);
        return new ApiException(ProblemTypes.Forbidden, $"principal '{caller.Principal.Id}' ({string.Join(", ", caller.Principal.RoleSet.Select(Roles.Name))}) may not do this: {why}");
    }
}
