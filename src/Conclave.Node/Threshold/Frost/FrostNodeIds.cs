using Conclave.Threshold.Frost;

namespace Conclave.Node.Frost;

/// <summary>Node id n holds the FROST share of identifier n (RFC 9591 identifiers 1..n).</summary>
public static class FrostNodeIds
{
    public static uint ToNode(Identifier id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return uint.Parse(id.ToString(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static Identifier ToIdentifier(FrostCiphersuite suite, uint node) => Identifier.FromInt(suite, (int)node);
}
