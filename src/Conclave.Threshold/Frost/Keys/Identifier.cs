using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Frost;

/// <summary>
/// A participant identifier: a non-zero scalar of the ciphersuite (RFC 9591 section 3, "Identifier"; Shamir
/// x-coordinate). Small integers 1..65535 are the usual choice; <see cref="Derive"/> maps arbitrary bytes (for
/// example a node name) to a scalar with HID. Zero — including any encoding of a value ≡ 0 mod q — is refused,
/// because the evaluation at zero is the secret itself (ATTACKS.md "Zero or duplicate participant identifier").
/// Identifiers order by numeric value, as RFC 9591 requires for commitment lists.
/// </summary>
public sealed class Identifier : IEquatable<Identifier>, IComparable<Identifier>
{
    private readonly byte[] _bigEndian;
    private readonly byte[] _encoded;
    private readonly string _display;

    private Identifier(FrostCiphersuite suite, Scalar value, string display)
    {
        Suite = suite;
        Value = value;
        _encoded = value.ToBytes();
        _bigEndian = suite is Ed25519Sha512Suite ? [.. _encoded.Reverse()] : (byte[])_encoded.Clone();
        _display = display;
    }

    public FrostCiphersuite Suite { get; }

    internal Scalar Value { get; }

    /// <summary>The identifier for a small integer (1..65535).</summary>
    public static Identifier FromInt(FrostCiphersuite suite, int value)
    {
        ArgumentNullException.ThrowIfNull(suite);
        if (value is < 1 or > ushort.MaxValue)
        {
            throw ThresholdErrors.Argument(nameof(value), "identifiers are 1..65535 (zero is the secret's evaluation point)");
        }

        return new Identifier(suite, suite.ScalarFromUInt64((ulong)value), value.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>An identifier derived from arbitrary bytes: HID(bytes) (as the FROST reference implementation's Identifier::derive).</summary>
    public static Identifier Derive(FrostCiphersuite suite, ReadOnlySpan<byte> name)
    {
        ArgumentNullException.ThrowIfNull(suite);
        Scalar s = suite.HId(name);
        if (s.IsZero)
        {
            throw ThresholdErrors.Argument(nameof(name), "derives to zero");
        }

        return new Identifier(suite, s, "h:" + Convert.ToHexStringLower(s.ToBytes().AsSpan(0, 4)));
    }

    /// <summary>Parses a serialized identifier (SerializeScalar): canonical and non-zero.</summary>
    public static Identifier Read(FrostCiphersuite suite, ReadOnlySpan<byte> encoded, string parameterName = "identifier")
    {
        ArgumentNullException.ThrowIfNull(suite);
        if (!suite.TryReadScalar(encoded, out Scalar? s))
        {
            throw ThresholdErrors.InvalidScalar(parameterName);
        }

        if (s.IsZero)
        {
            throw ThresholdErrors.Format(parameterName, "identifier zero is not allowed");
        }

        return FromScalar(suite, s);
    }

    internal static Identifier FromScalar(FrostCiphersuite suite, Scalar s)
    {
        byte[] enc = s.ToBytes();
        byte[] be = suite is Ed25519Sha512Suite ? [.. enc.Reverse()] : enc;
        bool small = be.AsSpan(0, be.Length - 2).IndexOfAnyExcept((byte)0) < 0;
        string display = small
            ? ((be[^2] << 8) | be[^1]).ToString(System.Globalization.CultureInfo.InvariantCulture)
            : "h:" + Convert.ToHexStringLower(enc.AsSpan(0, 4));
        return new Identifier(suite, s, display);
    }

    /// <summary>SerializeScalar(identifier).</summary>
    public byte[] ToBytes() => (byte[])_encoded.Clone();

    internal ReadOnlySpan<byte> Encoded => _encoded;

    public bool Equals(Identifier? other) => other is not null && ReferenceEquals(Suite, other.Suite) && _encoded.AsSpan().SequenceEqual(other._encoded);

    public override bool Equals(object? obj) => obj is Identifier i && Equals(i);

    public override int GetHashCode() => HashCode.Combine(Suite.WireId, BitConverter.ToInt32(_bigEndian, _bigEndian.Length - 4));

    /// <summary>Numeric order (RFC 9591: commitment lists are sorted by identifier).</summary>
    public int CompareTo(Identifier? other) => other is null ? 1 : _bigEndian.AsSpan().SequenceCompareTo(other._bigEndian);

    /// <summary>The integer for small identifiers, otherwise "h:" and a hex prefix. Identifiers are public.</summary>
    public override string ToString() => _display;

    public static bool operator ==(Identifier? left, Identifier? right) => left is null ? right is null : left.Equals(right);

    public static bool operator !=(Identifier? left, Identifier? right) => !(left == right);

    public static bool operator <(Identifier left, Identifier right) => left is null ? right is not null : left.CompareTo(right) < 0;

    public static bool operator >(Identifier left, Identifier right) => left is not null && left.CompareTo(right) > 0;

    public static bool operator <=(Identifier left, Identifier right) => left is null || left.CompareTo(right) <= 0;

    public static bool operator >=(Identifier left, Identifier right) => left is null ? right is null : left.CompareTo(right) >= 0;
}
