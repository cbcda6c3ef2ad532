using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Conclave.Server.Api;

/// <summary>
/// Admin routes over the signer nodes (docs/API.md "Signer nodes"): list them with their trust, evict a suspect one
/// (every key it holds is reshared away from it and it is never chosen again), re-admit one.
/// </summary>
public static class NodeRoutes
{
    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        const string Nodes = "/v1/admin/nodes";
        int[] common = [400, 401, 413, 429, 500];

        app.MapGet(Nodes, async Task<Ok<NodeListResponse>> (KeyService keys, CancellationToken ct) =>
            TypedResults.Ok(new NodeListResponse(await keys.NodesAsync(ct).ConfigureAwait(false)))).WithName("ListNodes").WithTags("v1").Problems(common);

        app.MapGet(Nodes + "/{id}", async Task<Ok<NodeResponse>> (string id, KeyService keys, CancellationToken ct) =>
        {
            uint node = keys.ParseNode(id, "id");
            return TypedResults.Ok((await keys.NodesAsync(ct).ConfigureAwait(false)).Single(n => n.Id == node));
        }).WithName("GetNode").WithTags("v1").Problems([.. common, 404]);

        app.MapPost(Nodes + "/{id}/evict", async Task<Results<Ok<EvictionResponse>, Accepted<EvictionResponse>>> (string id, EvictNodeRequest? body, KeyService keys, CancellationToken ct) =>
        {
            uint node = keys.ParseNode(id, "id");
            EvictionResponse r = await keys.EvictAsync(node, body?.Replacement, body?.Reason, ct).ConfigureAwait(false);
            return r.Finished
                ? TypedResults.Ok(r)
                : TypedResults.Accepted($"/v1/admin/nodes/{node.ToString(CultureInfo.InvariantCulture)}", r);
        }).WithName("EvictNode").WithTags("v1").Problems([.. common, 404, 409, 502, 503]);

        app.MapPost(Nodes + "/{id}/readmit", async Task<Ok<NodeResponse>> (string id, KeyService keys, CancellationToken ct) =>
        {
            uint node = keys.ParseNode(id, "id");
            return TypedResults.Ok(await keys.ReadmitAsync(node, ct).ConfigureAwait(false));
        }).WithName("ReadmitNode").WithTags("v1").Problems([.. common, 404]);
    }

    private static RouteHandlerBuilder Problems(this RouteHandlerBuilder b, int[] statuses)
    {
        foreach (int s in statuses.Distinct())
        {
            b.ProducesProblem(s, "application/problem+json");
        }

        return b;
    }
}
