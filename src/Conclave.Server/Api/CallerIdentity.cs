using Conclave.Policy.Principals;
using Microsoft.AspNetCore.Http;

namespace Conclave.Server.Api;

/// <summary>How the caller of a /v1 or /rpc request proved who it is.</summary>
public enum AuthMethod
{
    /// <summary>The admin bearer token (server data folder, file admin-token).</summary>
    AdminToken,

    /// <summary>An RFC 9421 HTTP message signature under a registered credential of a principal.</summary>
    HttpSignature,

    /// <summary>A client certificate issued by the cluster CA, bound to a principal.</summary>
    ClientCertificate,
}

/// <summary>
/// Who is calling: the principal the authentication middleware established for this request, how, and under which
/// credential. Set once per request by <see cref="ApiMiddleware.UseAuthAndAudit"/> before any handler runs; handlers
/// and the policy enforcement read it with <see cref="Get"/>. It is the one seam between authentication (who) and
/// authorization and policy (what they may do).
/// </summary>
public sealed record CallerIdentity(Principal Principal, AuthMethod Method, string? CredentialId)
{
    /// <summary>The holder of the admin token: a person with the role admin, scoped to everything.</summary>
    public static CallerIdentity Admin { get; } = new(new Principal("admin", PrincipalKind.Person, [Role.Admin], PrincipalScope.Everything), AuthMethod.AdminToken, null);

    /// <summary>The name written as the actor of audit entries.</summary>
    public string Actor => Principal.Id;

    /// <summary>The caller of this request; a request that reached a handler always has one.</summary>
    public static CallerIdentity Get(HttpContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        return ctx.Features.Get<CallerIdentity>() ?? throw new InvalidOperationException("the request has no authenticated caller");
    }

    public static CallerIdentity? Find(HttpContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        return ctx.Features.Get<CallerIdentity>();
    }

    internal static void Set(HttpContext ctx, CallerIdentity caller) => ctx.Features.Set(caller);
}
