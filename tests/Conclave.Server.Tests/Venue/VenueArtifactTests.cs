using System.Text.Json.Nodes;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// The example venue's compiled artifacts (examples/venue/artifacts) are what solc-js makes of the committed sources:
/// examples/venue/compile.mjs recompiles them (tests/interop/checks/venue-compile.mjs) and every artifact must be
/// byte-for-byte the committed file, with no artifact missing or left over.
/// </summary>
public sealed class VenueArtifactTests
{
    [Fact]
    public void Committed_artifacts_match_a_fresh_solc_compile_of_the_sources()
    {
        JsonNode result = NodeInterop.Run("venue-compile", [new { }])[0]!;
        JsonObject fresh = result["fresh"]!.AsObject();
        JsonObject committed = result["committed"]!.AsObject();
        Assert.Contains("MarginEngine", fresh.Select(p => p.Key));
        Assert.Equal(fresh.Select(p => p.Key).Order(StringComparer.Ordinal), committed.Select(p => p.Key).Order(StringComparer.Ordinal));
        foreach ((string name, JsonNode? text) in fresh)
        {
            Assert.True(text!.GetValue<string>() == committed[name]!.GetValue<string>(),
                $"examples/venue/artifacts/{name}.json differs from a fresh compile: run `node examples/venue/compile.mjs` and commit the result");
        }

        // The artifact carries what a deployment needs.
        JsonNode engine = JsonNode.Parse(fresh["MarginEngine"]!.GetValue<string>())!;
        Assert.StartsWith("0x60", engine["bytecode"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains(engine["abi"]!.AsArray(), f => f!["name"]?.GetValue<string>() == "liquidate");
    }

    [Fact]
    public void The_venue_profile_maps_operations_onto_functions_the_contract_has()
    {
        // Every function the profile names exists in the compiled ABI with the same parameter types, so the calldata
        // Conclave builds from the profile is calldata the contract understands.
        JsonNode profile = JsonNode.Parse(File.ReadAllText(Path.Combine(ExampleVenue.VenueDir, "profile.json")))!;
        JsonArray abi = ExampleVenue.Artifact("MarginEngine")["abi"]!.AsArray();
        var venue = Conclave.Policy.Venues.VenueProfile.Parse(profile.ToJsonString());
        Assert.Equal(4, venue.Operations.Count);
        foreach (var op in venue.Operations.Values)
        {
            Conclave.Policy.Venues.AbiFunction fn = Assert.IsType<Conclave.Policy.Venues.AbiFunction>(op.Function);
            Assert.Contains(abi, f => f!["type"]!.GetValue<string>() == "function" && f["name"]!.GetValue<string>() == fn.Name
                && string.Join(",", f["inputs"]!.AsArray().Select(i => i!["type"]!.GetValue<string>())) == string.Join(",", fn.Parameters.Select(p => p.Type.Canonical)));
        }
    }
}
