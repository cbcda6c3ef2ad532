using System.Text.Json.Nodes;
using Conclave.Policy.Principals;
using Conclave.Server.Api.Identity;
using Conclave.Server.Config;
using Conclave.Server.Policy;
using Conclave.Storage;
using Conclave.Storage.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Conclave.Server.Api;

/// <summary>
/// <c>/v1/venue-profiles</c> (put, get, list), issue 16; docs/API.md "Venue profiles" and docs/POLICY.md "Venue profiles
/// in the store". A put is held for approval like a loosening policy change and stored as the venue's next version once
/// approved; the set in force is the newest version of every venue's profile.
/// </summary>
public static class VenueProfileRoutes
{
    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);

        app.MapPut("/v1/venue-profiles/{venue}", async Task<IResult> (HttpContext ctx, string venue, ApprovalService approvals, ServerConfig config, CancellationToken ct) =>
        {
            CallerIdentity caller = RouteAuthorization.Require(ctx, Role.Admin);
            string text = await PolicyRoutes.ReadBodyAsync(ctx, ct).ConfigureAwait(false);
            JsonObject held = await approvals.HoldVenueProfileChangeAsync(caller, venue, text, config.PolicyChanges ?? new PolicyChangeSettings(), ct).ConfigureAwait(false);
            ctx.Response.Headers.Location = "/v1/requests/" + held["requestId"]!.GetValue<string>();
            return PolicyRoutes.Json(held, 202);
        }).WithName("PutVenueProfile").WithTags("v1");

        app.MapGet("/v1/venue-profiles", async Task<IResult> (IConclaveStore store, CancellationToken ct) =>
        {
            IReadOnlyList<StoredVenueProfile> all = await store.VenueProfiles.ListAsync(ct).ConfigureAwait(false);
            return PolicyRoutes.Json(new JsonObject { ["venueProfiles"] = new JsonArray([.. all.Select(p => (JsonNode)Summary(p))]) });
        }).WithName("ListVenueProfiles").WithTags("v1");

        app.MapGet("/v1/venue-profiles/{venue}", async Task<IResult> (string venue, string? version, IConclaveStore store, CancellationToken ct) =>
        {
            long? v = PolicyRoutes.VersionQuery(version);
            StoredVenueProfile p = await store.VenueProfiles.GetAsync(venue, v, ct).ConfigureAwait(false)
                ?? throw new ApiException(ProblemTypes.NotFound, v is null ? "no profile for this venue" : $"this venue's profile has no version {v}");
            JsonObject o = Summary(p);
            o["profile"] = JsonNode.Parse(p.Document);
            return PolicyRoutes.Json(o);
        }).WithName("GetVenueProfile").WithTags("v1");
    }

    private static JsonObject Summary(StoredVenueProfile p) => new()
    {
        ["venue"] = p.Venue,
        ["version"] = p.Version,
        ["hash"] = p.Hash,
        ["createdBy"] = p.CreatedBy,
        ["createdAt"] = p.CreatedAt,
    };
}
