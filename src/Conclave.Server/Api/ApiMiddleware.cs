using System.Security.Cryptography;
using System.Text;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conclave.Server.Api;

/// <summary>Marks a route that may compute while its audit intent is being committed (see <see cref="ApiMiddleware"/>).</summary>
public sealed class AuditOverlap;

/// <summary>
/// The request pipeline around the routes:
/// <list type="number">
/// <item>Errors: every exception becomes a problem+json response through <see cref="ProblemTypes.FromException"/>
/// (unexpected ones are logged by type only and answered 500 without detail).</item>
/// <item>Authentication: /v1 and /rpc need <c>Authorization: Bearer TOKEN</c> (the admin token, compared by hash in
/// constant time) or an RFC 9421 signature under a registered credential (<see cref="Identity.AgentAuthenticator"/>);
/// either sets <see cref="CallerIdentity"/>. Then the caller's role must be one the route allows
/// (<see cref="Identity.RouteAuthorization"/>, 403 otherwise). /metrics needs the metrics token (or the admin token) unless configured open; /healthz, /readyz
/// and /openapi are open.</item>
/// <item>Audit: every /v1 and /rpc call appends an entry before the handler runs — allowed ones with decision
/// "allow", result "accepted" and the id of the key the route names. Refused ones are counted per client address
/// and action by <see cref="DenialAudit"/> (the first at once, repeats as one counted entry per window), never one row each.
/// An allowed entry carries SHA-256(method ‖ 0 ‖ path ‖ 0 ‖ body), never the body. A failed audit write
/// fails the request (503) and nothing of its response leaves before the entry is durable; routes marked
/// <see cref="AuditOverlap"/> (signing) compute meanwhile and release their result only after it. An allowed call gets a second entry with its outcome once the response has gone out
/// (<see cref="AuditTrail.Outcome"/>: status, problem type or the SHA-256 of the response body).</item>
/// </list>
/// </summary>
public static partial class ApiMiddleware
{
    public static void UseErrors(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        ILogger log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Conclave.Server.Api");
        app.Use(async (HttpContext ctx, RequestDelegate next) =>
        {
            try
            {
                await next(ctx).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
                // The client went away (or the request timed out; the timeout middleware answers).
            }
            catch (Exception e) when (!ctx.Response.HasStarted)
            {
                ProblemBody problem = ProblemTypes.FromException(e);
                if (problem.Status >= 500 && problem.Type == ProblemTypes.Internal)
                {
                    LogUnexpected(log, e.GetType().FullName ?? "exception", e);
                }
                else if (e is NodeCallException node)
                {
                    LogNodeFailure(log, node.Message);
                }

                ctx.Response.Clear();
                await ProblemTypes.WriteAsync(ctx, problem).ConfigureAwait(false);
            }
        });
    }

    /// <summary>The largest request header block the API accepts (names, values and separators).</summary>
    public const int MaxRequestHeadersTotalBytes = 32 * 1024;

    /// <summary>Headers over <see cref="MaxRequestHeadersTotalBytes"/>: 431 with a problem+json body.</summary>
    public static void UseHeaderLimit(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.Use(async (HttpContext ctx, RequestDelegate next) =>
        {
            long total = 0;
            foreach (KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues> h in ctx.Request.Headers)
            {
                foreach (string? v in h.Value)
                {
                    total += h.Key.Length + (v?.Length ?? 0) + 4;
                }
            }

            if (total > MaxRequestHeadersTotalBytes)
            {
                ctx.Response.Headers.Connection = "close";
                await ProblemTypes.WriteAsync(ctx, ProblemTypes.Make(ProblemTypes.HeadersTooLarge, $"the request headers exceed {MaxRequestHeadersTotalBytes / 1024} KiB")).ConfigureAwait(false);
                return;
            }

            await next(ctx).ConfigureAwait(false);
        });
    }

    public static void UseMetrics(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        ServerMetrics metrics = app.Services.GetRequiredService<ServerMetrics>();
        app.Use(async (HttpContext ctx, RequestDelegate next) =>
        {
            try
            {
                await next(ctx).ConfigureAwait(false);
            }
            finally
            {
                metrics.CountRequest(ctx.Request.Method, RouteOf(ctx), ctx.Response.StatusCode);
            }
        });
    }

    public static void UseAuthAndAudit(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        AdminToken token = app.Services.GetRequiredService<AdminToken>();
        IConclaveStore store = app.Services.GetRequiredService<IConclaveStore>();
        AuditGate gate = app.Services.GetRequiredService<AuditGate>();
        DenialAudit denials = app.Services.GetRequiredService<DenialAudit>();
        Identity.AgentAuthenticator agents = app.Services.GetRequiredService<Identity.AgentAuthenticator>();
        Identity.ClientCertificateAuthenticator? certificates = app.Services.GetService<Identity.ClientCertificateAuthenticator>();
        ILogger log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Conclave.Server.Audit");
        app.Use(async (HttpContext ctx, RequestDelegate next) =>
        {
            PathString path = ctx.Request.Path;
            if (!path.StartsWithSegments("/v1") && !path.StartsWithSegments("/rpc"))
            {
                await next(ctx).ConfigureAwait(false);
                return;
            }

            string auth = ctx.Request.Headers.Authorization.ToString();
            bool bearer = auth.StartsWith("Bearer ", StringComparison.Ordinal);
            bool ok = bearer && token.Matches(auth["Bearer ".Length..].Trim());
            string action = $"{ctx.Request.Method} {RouteOf(ctx)}";
            string? address = ctx.Connection.RemoteIpAddress?.ToString();
            CallerIdentity? caller = ok ? CallerIdentity.Admin : null;
            string refusal = "send the admin token as 'Authorization: Bearer TOKEN', or sign the request as a principal (RFC 9421, docs/POLICY.md)";
            string refusedAs = "unauthorized";
            if (!ok && !bearer && Identity.AgentAuthenticator.IsSigned(ctx.Request))
            {
                // An RFC 9421 signed request under a registered credential (Identity.AgentAuthenticator).
                Identity.AuthenticationOutcome outcome = await agents.AuthenticateAsync(ctx).ConfigureAwait(false);
                caller = outcome.Caller;
                refusal = "the request signature was refused: " + outcome.Detail;
                refusedAs = $"unauthorized ({outcome.Reason})";
            }
            else if (!ok && !bearer && certificates is not null && ctx.Connection.ClientCertificate is { } certificate)
            {
                // A TLS client certificate from the cluster CA naming an agent (Identity.ClientCertificateAuthenticator).
                Identity.AuthenticationOutcome outcome = await certificates.AuthenticateAsync(certificate, ctx.RequestAborted).ConfigureAwait(false);
                caller = outcome.Caller;
                refusal = "the client certificate was refused: " + outcome.Detail;
                refusedAs = $"unauthorized ({outcome.Reason})";
            }

            if (caller is null)
            {
                // Refusals are counted per client address, action and reason, not written one fsync'd row each
                // (DenialAudit); the body of a refused request is not kept, nor its hash.
                if (denials.Record(address, action, result: refusedAs) is { } first)
                {
                    await first.ConfigureAwait(false);
                }

                await ProblemTypes.WriteAsync(ctx, ProblemTypes.Make(ProblemTypes.Unauthorized, refusal)).ConfigureAwait(false);
                return;
            }

            // Role-based authorization per route (Identity.RouteAuthorization); the fallback only answers 404/405.
            if (!Identity.RouteAuthorization.IsFallback(ctx)
                && (Identity.RouteAuthorization.RolesFor(ctx) is not { } roles || !Identity.RouteAuthorization.Allows(caller, roles)))
            {
                if (denials.Record(address, action, caller.Actor, "forbidden (role)") is { } first)
                {
                    await first.ConfigureAwait(false);
                }

                string why = Identity.RouteAuthorization.RolesFor(ctx) is { } needed
                    ? $"this route needs the role {string.Join(" or ", needed.Order().Select(Conclave.Policy.Principals.Roles.Name))}"
                    : "this route has no authorization rule";
                await ProblemTypes.WriteAsync(ctx, Identity.RouteAuthorization.Forbidden(caller, why).Problem).ConfigureAwait(false);
                return;
            }

            CallerIdentity.Set(ctx, caller);
            string actor = caller.Actor;
            byte[] requestHash = await HashRequestAsync(ctx, true).ConfigureAwait(false);

            // The key a route names is resolved here, so its entries carry the key's id (names can be reused after
            // a key is deleted; ids cannot) and the handler does not read it again.
            string? keyId = null;
            if (ctx.Request.RouteValues.TryGetValue("name", out object? n) && n is string name && name.Length is > 0 and <= 64)
            {
                KeyRecord? key = await store.Keys.GetByNameAsync(name, ctx.RequestAborted).ConfigureAwait(false);
                if (key is not null)
                {
                    AuditTrail.SetKey(ctx, key);
                    keyId = key.Id;
                }
            }

            // The intent entry. Not cancelled with the request: an append is either made durable or fails. A signing route
            // marked AuditOneCommit holds it (RequestAudit) and commits it with the policy decision and the round entry,
            // before the first node step or the response, whichever comes first: one fsync instead of three in sequence.
            var intentEntry = new AuditEntryInput(actor, action, keyId, requestHash, "allow", "accepted");
            RequestAudit? held = null;
            Task<AuditEntry> intent;
            if (ctx.GetEndpoint()?.Metadata.GetMetadata<AuditOneCommit>() is not null)
            {
                held = new RequestAudit(gate, intentEntry, ctx.RequestAborted);
                RequestAudit.Current = held;
                AuditTrail.SetRequestAudit(ctx, held);
                intent = held.Intent;
            }
            else
            {
                intent = AppendAsync(gate, intentEntry, ctx.RequestAborted);
            }

            AuditTrail.SetIntent(ctx, intent);

            // Nothing of any response leaves before the intent is durable: the first byte waits for it. If the append
            // failed, an error answer (normally the 503 audit-unavailable problem) goes out; a success answer never
            // does — the connection is dropped instead.
            ctx.Response.OnStarting(async () =>
            {
                try
                {
                    if (held is not null)
                    {
                        await held.FlushAsync().ConfigureAwait(false); // everything the request holds, the intent first
                    }

                    await intent.ConfigureAwait(false);
                }
                catch (ApiException) when (ctx.Response.StatusCode < 400)
                {
                    ctx.Abort();
                }
                catch (ApiException)
                {
                }
            });

            // Routes marked AuditOverlap (signing) start work while the intent is being committed and await it before
            // answering (AuditTrail.RequireIntentAsync); a signature computed but not yet audited is never released.
            // Every other route — key creation, refresh, reshare, which change state on the nodes — starts only once
            // the intent is durable.
            if (ctx.GetEndpoint()?.Metadata.GetMetadata<AuditOverlap>() is null)
            {
                if (held is not null)
                {
                    await held.FlushAsync().ConfigureAwait(false);
                }

                await intent.ConfigureAwait(false);
            }

            // The outcome is appended once the response has gone out (it cannot delay or fail the reply); a crash in
            // between leaves an "accepted" entry without its outcome, which an auditor can list.
            var body = new HashingResponseStream(ctx.Response.Body);
            ctx.Response.Body = body;
            ctx.Response.OnCompleted(() =>
            {
                (string? outcomeKey, string result) = AuditTrail.Outcome(ctx, keyId, body.Finish());
                body.Dispose();
                // Written in the background: Kestrel runs OnCompleted before the connection reads its next request, so
                // waiting here for a commit held every keep-alive client's next request behind this one's outcome fsync.
                _ = WriteOutcomeAsync(gate, log, held, intent, new AuditEntryInput(actor, action, outcomeKey, requestHash, "allow", result));
                return Task.CompletedTask;
            });
            await next(ctx).ConfigureAwait(false);
        });
    }

    /// <summary>
    /// GET /metrics needs the metrics token or the admin token unless server.json sets <c>openMetrics</c>. Scrapes
    /// are not audited (they change nothing and would flood the log); refusals are counted like every request.
    /// </summary>
    public static void UseMetricsAuth(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        ServerConfig config = app.Services.GetRequiredService<ServerConfig>();
        AdminToken admin = app.Services.GetRequiredService<AdminToken>();
        MetricsToken metrics = app.Services.GetRequiredService<MetricsToken>();
        app.Use(async (HttpContext ctx, RequestDelegate next) =>
        {
            if (!config.OpenMetrics && ctx.Request.Path.StartsWithSegments("/metrics"))
            {
                string auth = ctx.Request.Headers.Authorization.ToString();
                string presented = auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth["Bearer ".Length..].Trim() : "";
                if (!metrics.Token.Matches(presented) && !admin.Matches(presented))
                {
                    await ProblemTypes.WriteAsync(ctx, ProblemTypes.Make(ProblemTypes.Unauthorized, "send the metrics token (server data folder, file metrics-token) as 'Authorization: Bearer TOKEN'")).ConfigureAwait(false);
                    return;
                }
            }

            await next(ctx).ConfigureAwait(false);
        });
    }

    /// <summary>
    /// The outcome entry, after the intent. Nothing waits for it: it rides in the next commit (the next request's), or is
    /// committed alone after StoreOptions.LazyAuditDelay. A crash before then leaves an intent without its outcome, as a
    /// crash right after the response always could.
    /// </summary>
    private static async Task WriteOutcomeAsync(AuditGate gate, ILogger log, RequestAudit? held, Task<AuditEntry> intent, AuditEntryInput outcome)
    {
        try
        {
            if (held is not null)
            {
                await held.FlushAsync().ConfigureAwait(false); // a request that never started a response still writes its intent
            }

            long seq = (await intent.ConfigureAwait(false)).Seq;
            await gate.AppendLazilyAsync(outcome with { Result = $"{outcome.Result} (intent seq {seq})" }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (StorageException e)
        {
            LogOutcomeLost(log, e);
        }
        catch (OperationCanceledException)
        {
            // The client went away while the intent waited for an audit slot: nothing was carried out.
        }
        catch (ApiException e)
        {
            // The intent itself failed: the request was answered 503 (or dropped) and did not take effect.
            LogOutcomeLost(log, e);
        }
        catch (ObjectDisposedException)
        {
            // The server stopped and closed its store first; the intent is in the log without its outcome.
        }
    }

    private static async Task<AuditEntry> AppendAsync(AuditGate gate, AuditEntryInput entry, CancellationToken waitToken)
    {
        try
        {
            return await gate.AppendAsync(entry, waitToken).ConfigureAwait(false);
        }
        catch (StorageException e)
        {
            throw AuditUnavailable(e);
        }
    }

    /// <summary>The 503 audit-unavailable problem: an entry a request needs could not be written, so it was not carried out.</summary>
    internal static ApiException AuditUnavailable(StorageException e) =>
        new(ProblemTypes.Make(ProblemTypes.QuorumUnavailable, "the audit log could not be written, so the request was not carried out") with
        {
            Type = ProblemTypes.Base + "audit-unavailable",
            Title = "Audit log unavailable",
        }, e);

    private static async Task<byte[]> HashRequestAsync(HttpContext ctx, bool readBody)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(Encoding.UTF8.GetBytes(ctx.Request.Method + "\0" + ctx.Request.Path.Value + "\0"));
        if (readBody && (ctx.Request.ContentLength > 0 || ctx.Request.Headers.TransferEncoding.Count > 0))
        {
            ctx.Request.EnableBuffering();
            byte[] buffer = new byte[16384];
            int read;
            while ((read = await ctx.Request.Body.ReadAsync(buffer, ctx.RequestAborted).ConfigureAwait(false)) > 0)
            {
                h.AppendData(buffer, 0, read);
            }

            ctx.Request.Body.Position = 0;
        }

        return h.GetHashAndReset();
    }

    internal static string RouteOf(HttpContext ctx) =>
        (ctx.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText is { } raw ? (raw.StartsWith('/') ? raw : "/" + raw) : "(unmatched)";

    [LoggerMessage(Level = LogLevel.Error, Message = "an audit outcome entry could not be written")]
    private static partial void LogOutcomeLost(ILogger logger, Exception e);

    [LoggerMessage(Level = LogLevel.Warning, Message = "a signer node step failed: {Detail}")]
    private static partial void LogNodeFailure(ILogger logger, string detail);

    [LoggerMessage(Level = LogLevel.Error, Message = "unexpected {Type} while handling a request")]
    private static partial void LogUnexpected(ILogger logger, string type, Exception e);
}
