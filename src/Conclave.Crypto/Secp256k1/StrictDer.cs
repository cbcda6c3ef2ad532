namespace Conclave.Crypto.Secp256k1;

/// <summary>
/// Strict DER decoding of an ECDSA signature SEQUENCE { r INTEGER, s INTEGER } (X.690 section 10, SEC 1 appendix C.8):
/// definite short-form lengths, minimal positive integers, no trailing bytes; r and s in [1, n−1].
/// </summary>
internal static class StrictDer
{
    public static bool TryDecode(ReadOnlySpan<byte> der, out byte[] compact64)
    {
        compact64 = new byte[64];
        if (der.Length < 8 || der.Length > 72 || der[0] != 0x30 || der[1] != der.Length - 2)
        {
            return false;
        }

        int pos = 2;
        if (!ReadInteger(der, ref pos, compact64.AsSpan(0, 32)) || !ReadInteger(der, ref pos, compact64.AsSpan(32, 32)))
        {
            return false;
        }

        if (pos != der.Length)
        {
            return false;
        }

        return Secp256k1Scalar.TryFromBytes(compact64.AsSpan(0, 32), out Secp256k1Scalar r) && !r.IsZero
            && Secp256k1Scalar.TryFromBytes(compact64.AsSpan(32, 32), out Secp256k1Scalar s) && !s.IsZero;
    }

    private static bool ReadInteger(ReadOnlySpan<byte> der, ref int pos, Span<byte> out32)
    {
        if (pos + 2 > der.Length || der[pos] != 0x02)
        {
            return false;
        }

        int len = der[pos + 1];
        pos += 2;
        if (len == 0 || len > 33 || pos + len > der.Length)
        {
            return false;
        }

        ReadOnlySpan<byte> v = der.Slice(pos, len);
        if ((v[0] & 0x80) != 0)
        {
            return false; // negative
        }

        if (len > 1 && v[0] == 0 && (v[1] & 0x80) == 0)
        {
            return false; // not minimal
        }

        if (len == 33)
        {
            if (v[0] != 0)
            {
                return false;
            }

            v = v[1..];
        }

        out32.Clear();
        v.CopyTo(out32[(32 - v.Length)..]);
        pos += len;
        return true;
    }
}
