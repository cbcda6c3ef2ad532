using System.Text.Json.Nodes;

namespace Conclave.Client;

/// <summary>Venue profiles (docs/API.md "Venue profiles"): proposed with a put held for approval, read by venue and version.</summary>
public sealed partial class ConclaveClient
{
    /// <summary>
    /// PUT /v1/venue-profiles/{venue}: proposes <paramref name="profileJson"/> as the venue's next profile. The answer is
    /// the held request (202): the change approvers' quorum and time lock apply before it is in force.
    /// </summary>
    public async Task<JsonObject> PutVenueProfileAsync(string venue, string profileJson, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(venue);
        ArgumentNullException.ThrowIfNull(profileJson);
        return (await SendJsonAsync(HttpMethod.Put, $"v1/venue-profiles/{Esc(venue)}", profileJson, ct).ConfigureAwait(false))!.AsObject();
    }

    /// <summary>GET /v1/venue-profiles/{venue}: the newest version (or <paramref name="version"/>) with its hash and the profile.</summary>
    public async Task<JsonObject> GetVenueProfileAsync(string venue, long? version = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(venue);
        return (await SendJsonAsync(HttpMethod.Get, $"v1/venue-profiles/{Esc(venue)}" + (version is { } v ? $"?version={v}" : ""), null, ct).ConfigureAwait(false))!.AsObject();
    }

    /// <summary>GET /v1/venue-profiles: the newest version of every venue's profile (without the profiles).</summary>
    public async Task<JsonArray> ListVenueProfilesAsync(CancellationToken ct = default) =>
        (await SendJsonAsync(HttpMethod.Get, "v1/venue-profiles", null, ct).ConfigureAwait(false))!["venueProfiles"]!.AsArray();
}
