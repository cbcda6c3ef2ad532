using System.Globalization;
using Conclave.Server.Rotation;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Conclave.Server.Api;

/// <summary>
/// Rotation routes (docs/API.md, docs/ROTATION.md): the public transcript of the run that made a key version, a key's
/// rotation schedule, and an on-demand rotation of a scheduled key.
/// </summary>
public static class RotationRoutes
{
    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet("/v1/keys/{name}/versions/{version}/transcript", async Task<IResult> (HttpContext ctx, string name, string version, KeyService keys, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            if (!int.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < 1)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "version must be a positive integer");
            }

            byte[] transcript = await keys.Store.Rotations.GetTranscriptAsync(k.Id, v, ct).ConfigureAwait(false)
                ?? throw new ApiException(ProblemTypes.NotFound, $"key {name} has no rotation transcript for version {v} (single keys, imported keys and versions made before transcripts have none)");
            return TypedResults.Bytes(transcript, "application/json");
        }).WithName("GetKeyVersionTranscript").WithTags("v1")
            .Produces(200, contentType: "application/json")
            .ProducesProblem(400, "application/problem+json").ProducesProblem(401, "application/problem+json").ProducesProblem(404, "application/problem+json");

        // The transcript of one run by its operation id: the only way to a repair's, which keeps the key's version
        // (docs/ROTATION.md "Verifying a rotation"); served once the run is committed.
        app.MapGet("/v1/operations/{id}/transcript", async Task<IResult> (string id, KeyService keys, CancellationToken ct) =>
        {
            _ = await keys.OperationAsync(id, ct).ConfigureAwait(false); // 404 for an unknown run
            byte[] transcript = await keys.Store.Rotations.GetRunTranscriptAsync(id, ct).ConfigureAwait(false)
                ?? throw new ApiException(ProblemTypes.NotFound, $"operation {id} has no transcript (it is not committed, or it made none)");
            return TypedResults.Bytes(transcript, "application/json");
        }).WithName("GetOperationTranscript").WithTags("v1")
            .Produces(200, contentType: "application/json")
            .ProducesProblem(401, "application/problem+json").ProducesProblem(404, "application/problem+json");

        app.MapGet("/v1/keys/{name}/rotation-schedule", async Task<Ok<RotationScheduleResponse>> (HttpContext ctx, string name, KeyService keys, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            RotationSchedule s = await keys.Store.RotationSchedules.GetAsync(k.Id, ct).ConfigureAwait(false)
                ?? throw new ApiException(ProblemTypes.NotFound, $"key {name} has no rotation schedule");
            return TypedResults.Ok(ToResponse(k, s));
        }).WithName("GetRotationSchedule").WithTags("v1").ProducesProblem(401, "application/problem+json").ProducesProblem(404, "application/problem+json");

        app.MapPut("/v1/keys/{name}/rotation-schedule", async Task<Ok<RotationScheduleResponse>> (HttpContext ctx, string name, RotationScheduleRequest body, KeyService keys,
            ContinuousRotator rotator, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            if (body.IntervalSeconds is < 1 or > 315_360_000)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "intervalSeconds must be 1 to 315360000");
            }

            RotationSchedule s = await rotator.SetAsync(k, body.IntervalSeconds is { } i ? TimeSpan.FromSeconds(i) : null, body.AfterSignatures, ct).ConfigureAwait(false);
            return TypedResults.Ok(ToResponse(k, s));
        }).WithName("SetRotationSchedule").WithTags("v1").ProducesProblem(400, "application/problem+json").ProducesProblem(401, "application/problem+json")
            .ProducesProblem(404, "application/problem+json");

        // On demand (docs/ROTATION.md "Continuous rotation"): the scheduled key's next refresh is due now and the
        // background rotator runs it (audited with the reason, never overlapping another run, retried after a failure).
        // POST /v1/keys/{name}/refresh is the operator's immediate, synchronous refresh; this is for automation (a risk
        // system) that asks for a rotation without driving it, and only for keys with a schedule.
        app.MapPost("/v1/keys/{name}/rotate", async Task<Accepted<RotationScheduleResponse>> (HttpContext ctx, string name, RotationDemandRequest body, KeyService keys,
            ContinuousRotator rotator, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            if (!ContinuousRotator.IsThreshold(k.Scheme))
            {
                throw new ApiException(ProblemTypes.NotThreshold, $"on-demand rotation applies to threshold keys; {k.Name} is a single {k.Scheme} key");
            }

            string reason = body.Reason?.Trim() ?? "";
            if (reason.Length is < 1 or > 200 || reason.Any(char.IsControl))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "reason is required: 1 to 200 characters, no control characters");
            }

            if (!await rotator.DemandAsync(k.Id, reason, ct).ConfigureAwait(false))
            {
                throw new ApiException(ProblemTypes.NotFound, $"key {name} has no rotation schedule; set one first, or refresh it now with POST /v1/keys/{name}/refresh");
            }

            RotationSchedule s = (await keys.Store.RotationSchedules.GetAsync(k.Id, ct).ConfigureAwait(false))!;
            return TypedResults.Accepted($"/v1/keys/{Uri.EscapeDataString(k.Name)}/rotation-schedule", ToResponse(k, s));
        }).WithName("DemandRotation").WithTags("v1").ProducesProblem(400, "application/problem+json").ProducesProblem(401, "application/problem+json")
            .ProducesProblem(404, "application/problem+json");

        app.MapDelete("/v1/keys/{name}/rotation-schedule", async Task<NoContent> (HttpContext ctx, string name, KeyService keys, CancellationToken ct) =>
        {
            KeyRecord k = await keys.GetAsync(ctx, name, ct).ConfigureAwait(false);
            return await keys.Store.RotationSchedules.RemoveAsync(k.Id, ct).ConfigureAwait(false)
                ? TypedResults.NoContent()
                : throw new ApiException(ProblemTypes.NotFound, $"key {name} has no rotation schedule");
        }).WithName("RemoveRotationSchedule").WithTags("v1").ProducesProblem(401, "application/problem+json").ProducesProblem(404, "application/problem+json");
    }

    public static RotationScheduleResponse ToResponse(KeyRecord key, RotationSchedule s)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(s);
        return new RotationScheduleResponse(key.Name, s.Interval is { } i ? (long)i.TotalSeconds : null, s.AfterSignatures, s.Signatures, s.LastRotation, s.NextDue,
            s.Failures, s.TotalFailures, s.LastError, s.DemandReason);
    }
}
