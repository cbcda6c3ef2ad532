using System.Security.Cryptography;
using Conclave.Policy.HttpSignatures;
using Conclave.Policy.Principals;
using Conclave.Server.Policy;
using Conclave.Storage;
using Conclave.Storage.Principals;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Conclave.Server.Api.Identity;

/// <summary>
/// /v1/principals: people and agents, and the credentials they sign requests with (docs/API.md "Principals and
/// credentials"). Administration needs the role admin (<see cref="RouteAuthorization"/>); a principal may renew and
/// revoke its own credentials. Every call is audited by the middleware like any other (actor, route, request hash, outcome).
/// </summary>
public static class PrincipalRoutes
{
    /// <summary>Lease given when a request names none, and the longest one allowed.</summary>
    public static readonly TimeSpan DefaultLease = TimeSpan.FromDays(7);

    public static readonly TimeSpan MaxLease = TimeSpan.FromDays(90);

    public static readonly TimeSpan MinLease = TimeSpan.FromSeconds(60);

    private const string Base = "/v1/principals";

    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        TimeProvider time = TimeProvider.System;

        app.MapPost(Base, async Task<Created<PrincipalResponse>> (CreatePrincipalRequest body, IConclaveStore store, CancellationToken ct) =>
        {
            (Principal _, NewPrincipal row) = PrincipalCodec.ForCreate(body);
            PrincipalRecord created;
            try
            {
                created = await store.Principals.CreateAsync(row, ct).ConfigureAwait(false);
            }
            catch (StorageException e) when (e.Kind == StorageErrorKind.Duplicate)
            {
                throw new ApiException(ProblemTypes.PrincipalExists, $"a principal with id '{row.Id}' already exists");
            }

            return TypedResults.Created($"{Base}/{created.Id}", PrincipalCodec.ToResponse(created, [], time.GetUtcNow()));
        }).WithName("CreatePrincipal").WithTags("principals").Problems();

        app.MapGet(Base, async Task<Ok<PrincipalListResponse>> (IConclaveStore store, CancellationToken ct) =>
        {
            IReadOnlyList<PrincipalRecord> all = await store.Principals.ListAsync(ct).ConfigureAwait(false);
            var list = new List<PrincipalResponse>(all.Count);
            foreach (PrincipalRecord p in all)
            {
                list.Add(PrincipalCodec.ToResponse(p, await store.Principals.ListCredentialsAsync(p.Id, ct).ConfigureAwait(false), time.GetUtcNow()));
            }

            return TypedResults.Ok(new PrincipalListResponse(list));
        }).WithName("ListPrincipals").WithTags("principals").Problems();

        app.MapGet(Base + "/{id}", async Task<Ok<PrincipalResponse>> (string id, IConclaveStore store, CancellationToken ct) =>
        {
            PrincipalRecord p = await FindAsync(store, id, ct).ConfigureAwait(false);
            return TypedResults.Ok(PrincipalCodec.ToResponse(p, await store.Principals.ListCredentialsAsync(p.Id, ct).ConfigureAwait(false), time.GetUtcNow()));
        }).WithName("GetPrincipal").WithTags("principals").Problems();

        app.MapPost(Base + "/{id}/disable", (string id, IConclaveStore store, CancellationToken ct) => SetDisabledAsync(store, id, true, time, ct)).WithName("DisablePrincipal").WithTags("principals").Problems();
        app.MapPost(Base + "/{id}/enable", (string id, IConclaveStore store, CancellationToken ct) => SetDisabledAsync(store, id, false, time, ct)).WithName("EnablePrincipal").WithTags("principals").Problems();

        app.MapPost(Base + "/{id}/credentials", async Task<Created<CredentialResponse>> (string id, AddCredentialRequest body, IConclaveStore store, CancellationToken ct) =>
        {
            PrincipalRecord p = await FindAsync(store, id, ct).ConfigureAwait(false);
            HttpVerificationKey key = PrincipalCodec.ParseKey(body.Algorithm, body.PublicKey);
            string keyId = body.KeyId ?? p.Id + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
            if (!PrincipalCodec.IsValidId(keyId))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "keyId must be 1-128 characters from [A-Za-z0-9._:@-]");
            }

            DateTimeOffset lease = time.GetUtcNow() + Lease(body.LeaseSeconds);
            CredentialRecord c;
            try
            {
                c = await store.Principals.AddCredentialAsync(new NewCredential(keyId, p.Id, HttpSignatureAlgorithms.Name(key.Algorithm), [.. key.PublicKey], lease), ct).ConfigureAwait(false);
            }
            catch (StorageException e) when (e.Kind == StorageErrorKind.Duplicate)
            {
                throw new ApiException(ProblemTypes.CredentialExists, $"a credential with key id '{keyId}' already exists (key ids are never reused)");
            }

            return TypedResults.Created($"{Base}/{p.Id}/credentials/{c.KeyId}", PrincipalCodec.ToResponse(c, time.GetUtcNow()));
        }).WithName("AddCredential").WithTags("principals").Problems();

        app.MapPost(Base + "/{id}/credentials/{keyId}/renew", async Task<Ok<CredentialResponse>> (HttpContext ctx, string id, string keyId, RenewCredentialRequest? body, IConclaveStore store, CancellationToken ct) =>
        {
            CredentialRecord c = await OwnCredentialAsync(ctx, store, id, keyId, ct).ConfigureAwait(false);
            try
            {
                c = await store.Principals.RenewCredentialAsync(c.KeyId, time.GetUtcNow() + Lease(body?.LeaseSeconds), ct).ConfigureAwait(false);
            }
            catch (StorageException e) when (e.Kind == StorageErrorKind.Conflict)
            {
                throw new ApiException(ProblemTypes.CredentialRevoked, $"credential '{keyId}' is revoked; revocation is final (register a new credential)");
            }

            return TypedResults.Ok(PrincipalCodec.ToResponse(c, time.GetUtcNow()));
        }).WithName("RenewCredential").WithTags("principals").Problems();

        app.MapPost(Base + "/{id}/credentials/{keyId}/revoke", async Task<Ok<CredentialResponse>> (HttpContext ctx, string id, string keyId, IConclaveStore store,
            ApprovalService approvals, CancellationToken ct) =>
        {
            CredentialRecord c = await OwnCredentialAsync(ctx, store, id, keyId, ct).ConfigureAwait(false);
            c = await store.Principals.RevokeCredentialAsync(c.KeyId, ct).ConfigureAwait(false);
            // The usual answer to a leaked key: what was asked under it and still waits for approval never runs.
            await approvals.FailRequestsOfRevokedCredentialAsync(c.KeyId, CallerIdentity.Get(ctx).Actor, ct).ConfigureAwait(false);
            return TypedResults.Ok(PrincipalCodec.ToResponse(c, time.GetUtcNow()));
        }).WithName("RevokeCredential").WithTags("principals").Problems();
    }

    /// <summary>
    /// The credential, when the caller may manage it: an admin any credential, any other principal only its own (the
    /// path's principal must be the caller). Anyone else gets 403 before learning whether the credential exists.
    /// </summary>
    private static async Task<CredentialRecord> OwnCredentialAsync(HttpContext ctx, IConclaveStore store, string id, string keyId, CancellationToken ct)
    {
        CallerIdentity caller = CallerIdentity.Get(ctx);
        if (!caller.Principal.HasRole(Role.Admin) && caller.Principal.Id != id)
        {
            throw RouteAuthorization.Forbidden(caller, "a principal manages only its own credentials");
        }

        CredentialRecord? c = PrincipalCodec.IsValidId(keyId) ? await store.Principals.GetCredentialAsync(keyId, ct).ConfigureAwait(false) : null;
        if (c is null || c.PrincipalId != id)
        {
            throw new ApiException(ProblemTypes.NotFound, $"principal '{Shown(id)}' has no credential '{Shown(keyId)}'");
        }

        return c;
    }

    private static async Task<PrincipalRecord> FindAsync(IConclaveStore store, string id, CancellationToken ct) =>
        (PrincipalCodec.IsValidId(id) ? await store.Principals.GetAsync(id, ct).ConfigureAwait(false) : null)
        ?? throw new ApiException(ProblemTypes.UnknownPrincipal, $"principal '{Shown(id)}' does not exist");

    private static async Task<Ok<PrincipalResponse>> SetDisabledAsync(IConclaveStore store, string id, bool disabled, TimeProvider time, CancellationToken ct)
    {
        PrincipalRecord p = await FindAsync(store, id, ct).ConfigureAwait(false);
        p = await store.Principals.SetDisabledAsync(p.Id, disabled, ct).ConfigureAwait(false);
        return TypedResults.Ok(PrincipalCodec.ToResponse(p, await store.Principals.ListCredentialsAsync(p.Id, ct).ConfigureAwait(false), time.GetUtcNow()));
    }

    private static TimeSpan Lease(long? seconds)
    {
        if (seconds is null)
        {
            return DefaultLease;
        }

        if (seconds < MinLease.TotalSeconds || seconds > MaxLease.TotalSeconds)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"leaseSeconds must be from {MinLease.TotalSeconds:0} to {MaxLease.TotalSeconds:0} (90 days)");
        }

        return TimeSpan.FromSeconds(seconds.Value);
    }

    /// <summary>The problem answers every principal route can give, for the OpenAPI document.</summary>
    private static RouteHandlerBuilder Problems(this RouteHandlerBuilder b)
    {
        foreach (int status in (int[])[400, 401, 403, 404, 409, 413, 429, 500, 503])
        {
            b.ProducesProblem(status, "application/problem+json");
        }

        return b;
    }

    /// <summary>An id from the path, shown only when it is a valid id (never arbitrary input).</summary>
    private static string Shown(string id) => PrincipalCodec.IsValidId(id) ? id : "(invalid id)";
}
