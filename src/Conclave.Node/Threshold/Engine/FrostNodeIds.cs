using Conclave.Threshold.Frost;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// Node id n holds the share of identifier n (RFC 9591 identifiers 1..n), for FROST keys and for ecdsa-dkls23 keys, whose
/// secp256k1 shares carry the same identifiers.
/// </summary>
public static class FrostNodeIds
{
    public static uint ToNode(Identifier id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return uint.Parse(id.ToString(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static Identifier ToIdentifier(FrostCiphersuite suite, uint node) => Identifier.FromInt(suite, (int)node);
}
