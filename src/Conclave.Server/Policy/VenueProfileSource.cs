using System.Text;
using Conclave.Node.Config;
using Conclave.Policy;
using Conclave.Policy.Venues;
using Conclave.Server.Api;
using Conclave.Server.Config;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Policy;

namespace Conclave.Server.Policy;

/// <summary>
/// The venue profiles a server classifies transactions and typed data with and builds calldata from
/// (docs/POLICY.md "Venue profiles in the store"): the newest version of every profile in the store, so every replica
/// on one database uses the same set. A change stored through this server applies to its next request
/// (<see cref="Invalidate"/>); one stored by another replica, within <see cref="Refresh"/>.
/// </summary>
public sealed class VenueProfileSource(IConclaveStore store)
{
    /// <summary>The set last read, the versions it was built from, and when (Stopwatch ticks); null: read at the next use.</summary>
    private volatile Snapshot? _current;

    /// <summary>Bumped by <see cref="Invalidate"/>: a read that began before it does not become the current set.</summary>
    private long _generation;

    private sealed record Snapshot(VenueRegistry Registry, string Versions, long ReadAt);

    /// <summary>How long a request may use the set read by an earlier one (server.json <c>policyRefreshMilliseconds</c>, as policies).</summary>
    public TimeSpan Refresh { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A profile was stored by this server: the next request reads the set again.</summary>
    public void Invalidate()
    {
        Interlocked.Increment(ref _generation);
        _current = null;
    }

    /// <summary>The registry of the newest version of every stored profile, as read within <see cref="Refresh"/>.</summary>
    public async Task<VenueRegistry> CurrentAsync(CancellationToken ct)
    {
        if (_current is { } current && System.Diagnostics.Stopwatch.GetElapsedTime(current.ReadAt) < Refresh)
        {
            return current.Registry;
        }

        long generation = Interlocked.Read(ref _generation);
        long readAt = System.Diagnostics.Stopwatch.GetTimestamp();
        IReadOnlyList<StoredVenueProfile> stored = await store.VenueProfiles.ListAsync(ct).ConfigureAwait(false);
        string versions = string.Join("\n", stored.Select(p => $"{p.Venue} {p.Version} {p.Hash}"));
        VenueRegistry registry = _current is { } same && same.Versions == versions
            ? same.Registry
            : new VenueRegistry(stored.Select(p => VenueProfile.Parse(Encoding.UTF8.GetString(p.Document))));
        if (Interlocked.Read(ref _generation) == generation)
        {
            _current = new Snapshot(registry, versions, readAt);
        }

        return registry;
    }

    /// <summary>
    /// Parses <paramref name="text"/> as the profile of <paramref name="venue"/> and checks it can join the stored
    /// profiles of the other venues (no contract on a chain described twice). Refusals are 400 invalid-venue-profile
    /// problems naming the field.
    /// </summary>
    public async Task<VenueProfile> CheckAsync(string venue, string text, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(venue);
        ArgumentNullException.ThrowIfNull(text);
        VenueProfile profile;
        try
        {
            profile = VenueProfile.Parse(text);
        }
        catch (PolicyFormatException e)
        {
            throw new ApiException(ProblemTypes.InvalidVenueProfile, e.Message);
        }

        if (profile.Venue != venue)
        {
            throw new ApiException(ProblemTypes.InvalidVenueProfile, "the profile's venue is not the one in the path");
        }

        IReadOnlyList<StoredVenueProfile> others = [.. (await store.VenueProfiles.ListAsync(ct).ConfigureAwait(false)).Where(p => p.Venue != venue)];
        if (others.Select(p => VenueProfile.Parse(Encoding.UTF8.GetString(p.Document))).FirstOrDefault(p => p.ChainId == profile.ChainId && p.Contract == profile.Contract) is { } taken)
        {
            throw new ApiException(ProblemTypes.InvalidVenueProfile, $"contract: venue {taken.Venue} already describes this contract on chain {profile.ChainId}");
        }

        return profile;
    }

    /// <summary>
    /// Installs the profiles server.json <c>venueProfiles</c> names, each only when the store has no profile for its
    /// venue (as the starter policy: later changes made through the API are kept), audited <c>venue.put</c>; then
    /// checks the stored set is usable. A bad file or a clash is a <see cref="ConfigException"/> naming the file.
    /// </summary>
    public async Task InstallConfiguredAsync(ServerConfig config, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(config);
        foreach (string file in config.VenueProfiles ?? [])
        {
            (string text, VenueProfile profile) = Conclave.Server.Hosting.PolicySetup.ReadConfigured(config.Resolve(file), "venue profile", VenueProfile.Parse);
            if (await store.VenueProfiles.GetAsync(profile.Venue, null, ct).ConfigureAwait(false) is not null)
            {
                continue;
            }

            if (await store.VenueProfiles.PutAsync(new StoredVenueProfile(profile.Venue, 1, profile.Hash, Encoding.UTF8.GetBytes(text), "server.json venueProfiles",
                DateTimeOffset.UtcNow), ct).ConfigureAwait(false))
            {
                await store.Audit.AppendAsync(new AuditEntryInput("coordinator", "venue.put", null, null, "allow", $"{profile.Venue} v1 {profile.Hash} (server.json venueProfiles)"), ct)
                    .ConfigureAwait(false);
            }
        }

        Invalidate();
        try
        {
            await CurrentAsync(ct).ConfigureAwait(false);
        }
        catch (PolicyFormatException e)
        {
            throw new ConfigException($"venueProfiles: {e.Message} (two venues describe one contract on one chain)");
        }
    }
}
