using System.Text.Json;

namespace Conclave.Policy.Venues;

/// <summary>
/// The canonical form of a venue profile (docs/POLICY.md "Venue profiles in the store"): the parsed profile written back
/// as <c>venue</c>, <c>chainId</c>, <c>contract</c> (lowercase), <c>priceSource</c> (or null) and <c>operations</c> sorted
/// by name, each with <c>function</c> and <c>typedData</c> as <c>name(type name,…)</c> with canonical types (or null),
/// <c>amount</c> (or null) and <c>decimals</c> sorted by argument; no insignificant whitespace. What the profile means,
/// not how it was written: its hash is the profile's version identity.
/// </summary>
internal static class VenueProfileCanonicalWriter
{
    public static byte[] Write(VenueProfile profile)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false }))
        {
            w.WriteStartObject();
            w.WriteString("venue", profile.Venue);
            w.WriteNumber("chainId", profile.ChainId);
            w.WriteString("contract", profile.Contract);
            w.WriteString("priceSource", profile.PriceSource);
            w.WriteStartObject("operations");
            foreach (VenueOperation op in profile.Operations.Values.OrderBy(o => Conclave.Policy.Operations.Operations.Name(o.Operation), StringComparer.Ordinal))
            {
                w.WriteStartObject(Conclave.Policy.Operations.Operations.Name(op.Operation));
                w.WriteString("function", Fragment(op.Function));
                w.WriteString("typedData", Fragment(op.TypedData));
                w.WriteString("amount", op.AmountArg);
                w.WriteStartObject("decimals");
                foreach ((string arg, int d) in op.Decimals.OrderBy(x => x.Key, StringComparer.Ordinal))
                {
                    w.WriteNumber(arg, d);
                }

                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        return stream.ToArray();
    }

    private static string? Fragment(AbiFunction? f) =>
        f is null ? null : $"{f.Name}({string.Join(",", f.Parameters.Select(p => p.Type.Canonical + " " + p.Name))})";
}
