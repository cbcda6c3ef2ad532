using System.Globalization;
using Conclave.Storage.Keys;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Conclave.Server.Api;

/// <summary>Rotation routes (docs/API.md, docs/ROTATION.md "Verifying a rotation"): the public transcript of the run that made a key version.</summary>
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
    }
}
