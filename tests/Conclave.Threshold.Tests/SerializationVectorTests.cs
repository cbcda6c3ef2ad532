using System.Text.Json;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Tests;

/// <summary>
/// The ZcashFoundation frost serialization helpers (elements.json, samples.json) for the three suites Conclave implements:
/// the invalid element is refused, and the sample element, scalar and identifier encodings are Conclave's.
/// </summary>
public sealed class SerializationVectorTests
{
    [Theory]
    [InlineData("frost-ed25519", "zcash-frost-ed25519")]
    [InlineData("frost-secp256k1", "zcash-frost-secp256k1")]
    [InlineData("frost-taproot", "zcash-frost-secp256k1-tr")]
    public void ZcashSamplesAndInvalidElement(string scheme, string dir)
    {
        Assert.True(FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite));
        using JsonDocument elements = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector($"frost/{dir}/elements.json")));
        using JsonDocument samples = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector($"frost/{dir}/samples.json")));
        string S(JsonDocument d, string name) => d.RootElement.GetProperty(name).GetString()!;

        // Positive control first: the sample elements are read and written back unchanged; element1 = G, element2 = 2G.
        Assert.True(suite!.TryReadElement(Hex.Decode(S(samples, "element1")), out Element? e1));
        Assert.True(suite.TryReadElement(Hex.Decode(S(samples, "element2")), out Element? e2));
        Assert.Equal(S(samples, "element1"), Hex.Encode(e1!.ToBytes()));
        Assert.Equal(S(samples, "element1"), Hex.Encode(suite.Generator.ToBytes()));
        Assert.Equal(S(samples, "element2"), Hex.Encode(suite.Generator.Add(suite.Generator).ToBytes()));
        Assert.True(e2!.ValueEquals(suite.Generator.Add(suite.Generator)));

        Assert.True(suite.TryReadScalar(Hex.Decode(S(samples, "scalar1")), out Scalar? s1));
        Assert.Equal(S(samples, "scalar1"), Hex.Encode(s1!.ToBytes()));
        Assert.EndsWith(S(samples, "scalar1"), S(samples, "proof_of_knowledge"), StringComparison.Ordinal);
        Assert.Equal(S(samples, "identifier"), Hex.Encode(Identifier.FromInt(suite, 42).ToBytes()));

        // The invalid element (not on the curve) is refused.
        JsonElement invalid = elements.RootElement.GetProperty("elements").GetProperty("invalid_element");
        Assert.False(suite.TryReadElement(Hex.Decode(invalid.GetString()!), out _));
    }
}
