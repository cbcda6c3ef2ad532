namespace Conclave.Crypto.Secp256k1;

/// <summary>
/// A scalar prepared for repeated multiplication (<see cref="Secp256k1Scalar.ToMultiplier"/>): held in Montgomery form,
/// k·2^256 mod n, so that each <see cref="Multiply"/> is one Montgomery multiplication instead of the two that
/// <c>a * b</c> takes (a product and the conversion back). The products are the same values as <c>k * x</c>, in constant
/// time. For a factor used many times (a challenge against hundreds of values, a fixed public vector); the value may be
/// secret, so it never prints.
/// </summary>
public readonly struct Secp256k1ScalarMultiplier
{
    private readonly ulong _m0, _m1, _m2, _m3;

    internal Secp256k1ScalarMultiplier(ulong m0, ulong m1, ulong m2, ulong m3)
    {
        _m0 = m0;
        _m1 = m1;
        _m2 = m2;
        _m3 = m3;
    }

    /// <summary>k·x mod n, the same value as <c>k * x</c>.</summary>
    public Secp256k1Scalar Multiply(Secp256k1Scalar x) => x.MontgomeryMultiply(_m0, _m1, _m2, _m3);

    public override string ToString() => "Secp256k1ScalarMultiplier(****)";
}
