using Conclave.Server.Config;
using Conclave.Policy.Operations;
using Conclave.Server.Coordinator;
using Conclave.Server.Policy;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Conclave.Server.Api;

/// <summary>The REST v1 routes, health, readiness and metrics.</summary>
public static class ApiRoutes
{
    /// <summary>
    /// Items of one sign/batch in progress at once. High enough that a batch's threshold items reach the coordinator
    /// together and share sign steps (issue 18, StepCoalescer); each item is still decided, limited and audited alone.
    /// </summary>
    private const int SignBatchParallelism = 64;

    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        RouteGroupBuilder v1 = app.MapGroup("/v1").WithTags("v1");
        int[] common = [400, 401, 413, 429, 500];

        v1.MapPost("/keys", async Task<Created<KeyResponse>> (CreateKeyRequest body, KeyService keys, ServerMetrics metrics, CancellationToken ct) =>
        {
            KeyRecord k = await keys.CreateAsync(body, ct).ConfigureAwait(false);
            return TypedResults.Created($"/v1/keys/{k.Name}", KeyService.ToResponse(k));
        }).WithName("CreateKey").Problems([.. common, 409, 502, 503]);

        v1.MapGet("/keys", async Task<Ok<KeyListResponse>> (KeyService keys, CancellationToken ct) =>
        {
            IReadOnlyList<KeyRecord> all = await keys.Store.Keys.ListAsync(ct).ConfigureAwait(false);
            return TypedResults.Ok(new KeyListResponse([.. all.OrderBy(k => k.Name, StringComparer.Ordinal).Select(KeyService.ToResponse)]));
        }).WithName("ListKeys").Problems(common);

        v1.MapGet("/keys/{name}", async Task<Ok<KeyResponse>> (HttpContext ctx, string name, KeyService keys, CancellationToken ct) =>
            TypedResults.Ok(KeyService.ToResponse(await keys.GetAsync(ctx, name, ct).ConfigureAwait(false))))
            .WithName("GetKey").Problems([.. common, 404]);

        v1.MapGet("/keys/{name}/versions", async Task<Ok<KeyVersionsResponse>> (HttpContext ctx, string name, KeyService keys, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            IReadOnlyList<KeyVersionRecord> versions = await keys.Store.Keys.GetVersionsAsync(k.Id, ct).ConfigureAwait(false);
            return TypedResults.Ok(new KeyVersionsResponse(k.Name, [.. versions.Select(v => new KeyVersionResponse(v.Version, Convert.ToHexStringLower(v.PublicKey), v.CreatedAt))]));
        }).WithName("GetKeyVersions").Problems([.. common, 404]);

        v1.MapPost("/keys/{name}/sign", async Task<Results<Ok<SignResponse>, Accepted<HeldResponse>>> (HttpContext ctx, string name, SignRequest body, KeyService keys,
            PolicyGate policy, ApprovalService approvals, ServerMetrics metrics, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            CallerIdentity caller = CallerIdentity.Get(ctx);
            keys.ValidateSignInput(k, body); // a malformed request is a 400 before policy decides

            OperationRequest op = SigningOperations.ForSign(caller.Principal, k, body);
            string text = System.Text.Json.JsonSerializer.Serialize(body, ApiJsonContext.Default.SignRequest);
            PolicyGrant grant;
            try
            {
                grant = await policy.AuthorizeAsync(caller, k, op, ApprovalService.SignRoute, text,
                    approvals.Sink(ApprovalService.SignRoute, k, caller, Conclave.Policy.Operations.Operations.Name(op.Operation), text), ct).ConfigureAwait(false);
            }
            catch (HeldForApprovalException held)
            {
                await AuditTrail.RequireIntentAsync(ctx).ConfigureAwait(false);
                return TypedResults.Accepted($"/v1/requests/{held.Held.RequestId}", held.Held);
            }

            if (KeyService.SignsInProcess(k))
            {
                // The intent and the decision commit while the server signs; the response (RequireIntentAsync) waits for both.
                RequestAudit.Current?.StartFlush();
            }

            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            SignResponse r;
            try
            {
                r = await keys.SignAsync(k, body, ct).ConfigureAwait(false);
            }
            catch
            {
                await policy.ReleaseAsync(grant).ConfigureAwait(false);
                throw;
            }

            await AuditTrail.RequireIntentAsync(ctx).ConfigureAwait(false);
            metrics.ObserveSign(k.Scheme, System.Diagnostics.Stopwatch.GetElapsedTime(start));
            return TypedResults.Ok(r with { Policy = grant.Explanation });
        }).WithName("Sign").WithMetadata(new AuditOverlap(), new AuditOneCommit()).Problems([.. common, 403, 404, 409, 502, 503, 504]);

        v1.MapPost("/keys/{name}/sign/batch", async Task<Ok<SignBatchResponse>> (HttpContext ctx, string name, SignBatchRequest body, KeyService keys, PolicyGate policy,
            ServerMetrics metrics, CancellationToken ct) =>
        {
            CallerIdentity caller = CallerIdentity.Get(ctx);
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            if (body.Items is null || body.Items.Count is 0 or > 256)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "items must hold 1 to 256 sign requests");
            }

            var results = new SignBatchItem[body.Items.Count];
            await Parallel.ForAsync(0, body.Items.Count, new ParallelOptions { MaxDegreeOfParallelism = SignBatchParallelism, CancellationToken = ct }, async (i, token) =>
            {
                PolicyGrant? grant = null;
                try
                {
                    // Each item is decided, audited and limited on its own; an item that needs approval is refused
                    // with its decision (held requests are made by POST /v1/keys/{name}/sign only).
                    SignRequest item = body.Items[i] ?? new SignRequest();
                    keys.ValidateSignInput(k, item);

                    OperationRequest op = SigningOperations.ForSign(caller.Principal, k, item);
                    grant = await policy.AuthorizeAsync(caller, k, op, "sign", System.Text.Json.JsonSerializer.Serialize(item, ApiJsonContext.Default.SignRequest), null, token)
                        .ConfigureAwait(false);
                    long start = System.Diagnostics.Stopwatch.GetTimestamp();
                    SignResponse r = await keys.SignAsync(k, item, token).ConfigureAwait(false);
                    metrics.ObserveSign(k.Scheme, System.Diagnostics.Stopwatch.GetElapsedTime(start));
                    results[i] = new SignBatchItem(r with { Policy = grant.Explanation }, null);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    await policy.ReleaseAsync(grant).ConfigureAwait(false);
                    results[i] = new SignBatchItem(null, ProblemTypes.FromException(e));
                }
            }).ConfigureAwait(false);
            await AuditTrail.RequireIntentAsync(ctx).ConfigureAwait(false);
            return TypedResults.Ok(new SignBatchResponse(results));
        }).WithName("SignBatch").WithMetadata(new AuditOverlap(), new AuditOneCommit()).Problems([.. common, 404, 503]);

        v1.MapPost("/keys/{name}/derive", async Task<Ok<DeriveResponse>> (HttpContext ctx, string name, DeriveRequest body, KeyService keys, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            return TypedResults.Ok(await keys.DeriveAsync(k, body.Path, ct).ConfigureAwait(false));
        }).WithName("Derive").Problems([.. common, 404]);

        v1.MapPost("/keys/{name}/refresh", async Task<Results<Ok<KeyResponse>, Accepted<OperationResponse>>> (HttpContext ctx, string name, KeyService keys, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            return Rotated(await keys.RefreshOrReshareAsync(k, "refresh", null, null, ct).ConfigureAwait(false));
        }).WithName("Refresh").Problems([.. common, 404, 409, 501, 502, 503]);

        v1.MapPost("/keys/{name}/reshare", async Task<Results<Ok<KeyResponse>, Accepted<OperationResponse>>> (HttpContext ctx, string name, ReshareRequest body, KeyService keys, Cluster cluster, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            if (body.Threshold is null || body.Participants is null)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, body.Threshold is null ? "threshold is required" : "participants is required");
            }

            // The same rule, and the same messages, as key creation.
            KeyService.ValidateCommittee(body.Threshold.Value, body.Participants.Value, cluster.NodeIds.Count);

            return Rotated(await keys.RefreshOrReshareAsync(k, "reshare", body.Threshold, body.Participants, ct).ConfigureAwait(false));
        }).WithName("Reshare").Problems([.. common, 404, 409, 501, 502, 503]);

        v1.MapPost("/keys/{name}/repair", async Task<Results<Ok<KeyResponse>, Accepted<OperationResponse>>> (HttpContext ctx, string name, RepairRequest body, KeyService keys, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            int node = body.Node ?? throw new ApiException(ProblemTypes.InvalidRequest, "node is required: the signer node whose lost share is rebuilt");
            return Rotated(await keys.RepairAsync(k, node, ct).ConfigureAwait(false));
        }).WithName("Repair").Problems([.. common, 404, 409, 501, 502, 503]);

        v1.MapGet("/operations/{id}", async Task<Ok<OperationResponse>> (string id, KeyService keys, CancellationToken ct) =>
            TypedResults.Ok(await keys.OperationAsync(id, ct).ConfigureAwait(false))).WithName("GetOperation").Problems([.. common, 404]);

        v1.MapGet("/audit", async Task<Ok<AuditPageResponse>> (IConclaveStore store, string? after, string? limit, string? last, CancellationToken ct) =>
        {
            long from = ParseQuery(after, "after", 0, long.MaxValue - 1, 0) + 1;
            int n = (int)ParseQuery(limit, "limit", 1, 1000, 100);
            if (last is not null)
            {
                // The newest entries, as tail shows them.
                if (after is not null || limit is not null)
                {
                    throw new ApiException(ProblemTypes.InvalidRequest, "query parameter 'last' cannot be combined with 'after' or 'limit'");
                }

                n = (int)ParseQuery(last, "last", 1, 1000, 0);
                from = Math.Max(1, (await store.Audit.GetHeadAsync(ct).ConfigureAwait(false)).Seq - n + 1);
            }

            IReadOnlyList<AuditEntry> entries = await store.Audit.ReadAsync(from, n, ct).ConfigureAwait(false);
            return TypedResults.Ok(new AuditPageResponse(
                [.. entries.Select(e => new AuditEntryResponse(e.Seq, e.Time, e.Actor, e.Action, e.KeyId, e.RequestHash is null ? null : Convert.ToHexStringLower(e.RequestHash),
                    e.Decision, e.Result, Convert.ToHexStringLower(e.Hash)))],
                entries.Count > 0 ? entries[^1].Seq : from - 1));
        }).WithName("ReadAudit").Problems(common);

        v1.MapGet("/audit/verify", async Task<Ok<AuditVerifyResponse>> (IConclaveStore store, ServerIdentityKey identity, CancellationToken ct) =>
        {
            AuditVerificationResult r = await store.Audit.VerifyAsync(new AuditVerifyOptions { TrustedCheckpointKey = identity.PublicKey }, ct).ConfigureAwait(false);
            return TypedResults.Ok(new AuditVerifyResponse(r.Ok, r.EntriesChecked, r.CheckpointsChecked, r.FirstBadSeq, r.Kind.ToString().ToLowerInvariant(), r.Detail,
                r.Head.Seq, Convert.ToHexStringLower(r.Head.Hash)));
        }).WithName("VerifyAudit").Problems(common);

        // Rotating the audit log's checkpoint key (docs/ROTATION.md "Rotating the audit log's checkpoint key"): the
        // handover entry is the audit record; the response names both keys so an auditor can pin either.
        v1.MapPost("/admin/audit/rotate-key", async Task<Ok<AuditKeyRotationResponse>> (HttpContext ctx, IConclaveStore store, Conclave.Server.Hosting.AuditKeys auditKeys, CancellationToken ct) =>
        {
            AuditEntry entry = await auditKeys.RotateAsync(store, CallerIdentity.Get(ctx).Actor, ct).ConfigureAwait(false);
            AuditKeyHandover h = AuditKeyHandover.TryParse(entry.Result, out AuditKeyHandover? parsed) ? parsed! : throw new InvalidOperationException("handover entry unreadable");
            return TypedResults.Ok(new AuditKeyRotationResponse(entry.Seq, h.Scheme, Convert.ToHexStringLower(h.OldPublicKey), Convert.ToHexStringLower(h.NewPublicKey)));
        }).WithName("RotateAuditKey").Problems(common);

        v1.MapPost("/cluster/resync", async Task<Ok<KeySyncResponse>> (KeyConsistency consistency, CancellationToken ct) =>
            TypedResults.Ok(new KeySyncResponse(await consistency.CheckAllAsync(repair: true, ct).ConfigureAwait(false))))
            .WithName("ResyncKeys").Problems(common);

        app.MapGet("/healthz", () => TypedResults.Ok(new HealthResponse("alive"))).WithName("Health").WithTags("health");
        app.MapGet("/readyz", async Task<IResult> (ReadinessCache readiness, CancellationToken ct) =>
        {
            ReadyResponse r = await readiness.GetAsync(ct).ConfigureAwait(false);
            return TypedResults.Json(r, ApiJsonContext.Default.ReadyResponse, statusCode: r.Ready ? 200 : 503);
        }).WithName("Ready").WithTags("health").Produces<ReadyResponse>(200).Produces<ReadyResponse>(503);
        app.MapGet("/metrics", async (ServerMetrics metrics, KeyService keys, Cluster cluster, CancellationToken ct) =>
        {
            string text = await metrics.RenderAsync(keys, cluster, ct).ConfigureAwait(false);
            return TypedResults.Text(text, "text/plain; version=0.0.4; charset=utf-8");
        }).WithName("Metrics").WithTags("health");
    }

    /// <summary>The readiness check behind /readyz (cached by <see cref="ReadinessCache"/>): the store answers and a quorum of nodes attests.</summary>
    public static async Task<ReadyResponse> CheckReadinessAsync(IConclaveStore store, Cluster cluster, ServerConfig config, ServerMetrics metrics, CancellationToken ct,
        KeyService? keys = null, KeyConsistency? consistency = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(metrics);
        bool storeOpen;
        try
        {
            _ = await store.Audit.GetHeadAsync(ct).ConfigureAwait(false);
            storeOpen = true;
        }
        catch (StorageException)
        {
            storeOpen = false;
        }

        IReadOnlyList<uint> up = await cluster.AttestAsync(ct).ConfigureAwait(false);
        metrics.SetNodesUp(cluster.NodeIds, up);
        // A key reshared to 3-of-3 answers 503 with one node down even while the cluster's default quorum is up; every
        // stored threshold key counts, used since start or not (the holders its row records: KeyService.Holdings).
        IReadOnlyList<string> belowQuorum = keys is null ? [] : await keys.KeysBelowQuorumAsync(up, ct).ConfigureAwait(false);
        // Keys the store and the nodes disagree about (a server backup restored after the nodes moved on), and until every
        // key was checked once after start, readiness waits (KeyConsistency, docs/OPERATIONS.md "Restoring the server").
        KeyOutOfSyncResponse[] outOfSync = consistency is null ? [] : [.. consistency.Blocking.Select(r => new KeyOutOfSyncResponse(r.KeyId, r.Name, r.Problem ?? r.State))];
        bool checkedOnce = consistency?.FirstPassDone ?? true;
        return new ReadyResponse(storeOpen && up.Count >= config.Threshold && belowQuorum.Count == 0 && outOfSync.Length == 0 && checkedOnce, storeOpen, up, config.Threshold,
            belowQuorum, outOfSync, checkedOnce);
    }

    /// <summary>An integer query parameter in [min, max], or its default when absent; the error names the parameter and its range.</summary>
    private static long ParseQuery(string? text, string name, long min, long max, long absent)
    {
        if (text is null)
        {
            return absent;
        }

        return long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v) && v >= min && v <= max
            ? v
            : throw new ApiException(ProblemTypes.InvalidRequest, $"query parameter '{name}' must be an integer from {min} to {max}");
    }

    private static RouteHandlerBuilder Problems(this RouteHandlerBuilder b, int[] statuses)
    {
        foreach (int s in statuses.Distinct())
        {
            b.ProducesProblem(s, "application/problem+json");
        }

        return b;
    }
    /// <summary>A finished rotation answers 200 with the key; one that outlived the request 202 with the run to poll.</summary>
    private static Results<Ok<KeyResponse>, Accepted<OperationResponse>> Rotated((KeyResponse? Key, OperationResponse? Pending) r) =>
        r.Key is not null
            ? TypedResults.Ok(r.Key)
            : TypedResults.Accepted($"/v1/operations/{r.Pending!.Id}", r.Pending);
}

/// <summary>The coordinator's identity public key: the audit checkpoint signer.</summary>
public sealed record ServerIdentityKey(byte[] PublicKey);
