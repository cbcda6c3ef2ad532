using Conclave.Crypto.Secp256k1;

namespace Conclave.Testing;

/// <summary>
/// Where the fields of a DKLs23 signing round-two body lie, and the edits the attack tests make to them (in process:
/// Conclave.Threshold.Tests DklsAttackTests; through the transport: the test node host's DklsFaultCatalogue).
/// Round-two body (DklsSigner.Round2): R ‖ salt ‖ pk ‖ ψ ‖ Γ^u ‖ Γ^v ‖ Alice nonce ‖ τ ‖ μ ‖ ρ̃.
/// </summary>
public static class DklsTamper
{
    public const int SaltOffset = 33;
    public const int PkOffset = 65;
    public const int PsiOffset = 98;
    public const int GammaUOffset = 130;
    public const int GammaVOffset = 163;
    public const int VoleOffset = 196;
    public const int TauOffset = VoleOffset + 32;

    /// <summary>Adds the generator to the compressed point at <paramref name="offset"/> of <paramref name="body"/>.</summary>
    public static void AddG(byte[] body, int offset)
    {
        ArgumentNullException.ThrowIfNull(body);
        (Secp256k1Point.Parse(body.AsSpan(offset, 33)) + Secp256k1Point.Generator).ToCompressed().CopyTo(body, offset);
    }

    /// <summary>A 33-byte encoding with a valid prefix whose x has no point on the curve.</summary>
    public static byte[] OffCurvePoint()
    {
        byte[] p = new byte[33];
        p[0] = 0x02;
        for (byte x = 1; ; x++)
        {
            p[32] = x;
            if (!Secp256k1Point.TryParse(p, out _))
            {
                return p;
            }
        }
    }
}
