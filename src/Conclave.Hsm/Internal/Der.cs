namespace Conclave.Hsm.Internal;

/// <summary>
/// The few DER (X.690) encodings PKCS#11 EC keys use: CKA_EC_PARAMS as a named-curve OBJECT IDENTIFIER or a
/// PrintableString curve name, and CKA_EC_POINT as an OCTET STRING wrapping the encoded point
/// (PKCS#11 v3.0 Current Mechanisms section 2.3.3 and 2.3.5).
/// </summary>
internal static class Der
{
    /// <summary>secp256k1: OID 1.3.132.0.10 (SEC 2 section A.2.1).</summary>
    internal static ReadOnlySpan<byte> Secp256k1Oid => [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A];

    /// <summary>Ed25519: OID 1.3.101.112 (id-Ed25519, RFC 8410 section 3).</summary>
    internal static ReadOnlySpan<byte> Ed25519Oid => [0x06, 0x03, 0x2B, 0x65, 0x70];

    /// <summary>Ed25519 by name: PrintableString "edwards25519" (PKCS#11 v3.0 section 2.3.5).</summary>
    internal static ReadOnlySpan<byte> Ed25519Name =>
        [0x13, 0x0C, (byte)'e', (byte)'d', (byte)'w', (byte)'a', (byte)'r', (byte)'d', (byte)'s', (byte)'2', (byte)'5', (byte)'5', (byte)'1', (byte)'9'];

    /// <summary>
    /// Reads the point out of CKA_EC_POINT. The standard form is a DER OCTET STRING; some tokens return the bare point,
    /// which is accepted when its length is exactly one of <paramref name="bareLengths"/>.
    /// </summary>
    internal static bool TryUnwrapEcPoint(ReadOnlySpan<byte> value, ReadOnlySpan<int> bareLengths, out ReadOnlySpan<byte> point)
    {
        point = default;
        if (value.Length >= 2 && value[0] == 0x04)
        {
            int length;
            int header;
            if (value[1] < 0x80)
            {
                length = value[1];
                header = 2;
            }
            else if (value[1] == 0x81 && value.Length >= 3 && value[2] >= 0x80)
            {
                length = value[2];
                header = 3;
            }
            else
            {
                length = -1;
                header = 0;
            }

            if (length >= 0 && header + length == value.Length && bareLengths.Contains(length))
            {
                point = value[header..];
                return true;
            }
        }

        if (bareLengths.Contains(value.Length))
        {
            point = value;
            return true;
        }

        return false;
    }
}
