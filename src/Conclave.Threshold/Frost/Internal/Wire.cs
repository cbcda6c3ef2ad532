using System.Buffers.Binary;
using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Threshold.Frost.Internal;

/// <summary>Type tags of the binary encodings (byte 1 of every package).</summary>
internal enum WireKind : byte
{
    SigningCommitments = 1,
    SigningPackage = 2,
    SignatureShare = 3,
    PublicKeyPackage = 4,
    KeyPackage = 5,
    SigningNonces = 6,
    DkgRound1 = 7,
    DkgRound2 = 8,
    DkgConfirmation = 9,
    DkgComplaint = 10,
    RepairDelta = 11,
    RepairSigma = 12,
    DkgSecretState = 13,
    DkgCommitment = 14,
}

/// <summary>
/// The compact binary encoding of every FROST package: version (1) ‖ kind (1) ‖ suite (1) ‖ body. Fixed-size
/// scalars and elements in the ciphersuite's encoding; counts as u16 big-endian; byte strings as u32 length ‖ bytes.
/// Parsing is exact: every field validated, no trailing bytes.
/// </summary>
internal sealed class WireWriter
{
    internal const byte Version = 1;
    private readonly MemoryStream _ms;

    /// <summary>
    /// <paramref name="capacity"/>: for secret packages, the exact final size, so the stream never reallocates
    /// and leaves stale copies of secrets behind (<see cref="ToSecret"/> zeroes the one buffer it uses).
    /// </summary>
    internal WireWriter(WireKind kind, FrostCiphersuite suite, int capacity = 256)
    {
        _ms = new MemoryStream(capacity);
        _ms.WriteByte(Version);
        _ms.WriteByte((byte)kind);
        _ms.WriteByte(suite.WireId);
    }

    internal void Byte(byte b) => _ms.WriteByte(b);

    internal void U16(int v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, checked((ushort)v));
        _ms.Write(b);
    }

    internal void U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        _ms.Write(b);
    }

    internal void Raw(ReadOnlySpan<byte> bytes) => _ms.Write(bytes);

    internal void Bytes(ReadOnlySpan<byte> bytes)
    {
        U32(checked((uint)bytes.Length));
        _ms.Write(bytes);
    }

    internal void Scalar(Scalar s)
    {
        Span<byte> b = stackalloc byte[s.Size];
        s.WriteTo(b);
        _ms.Write(b);
        CryptographicOperations.ZeroMemory(b);
    }

    internal void Element(Element e) => _ms.Write(e.ToBytes());

    internal void Id(Identifier id) => _ms.Write(id.ToBytes());

    internal byte[] ToArray() => _ms.ToArray();

    /// <summary>For secret packages: copies into a SecretBuffer and zeroes the stream's buffer.</summary>
    internal SecretBuffer ToSecret()
    {
        byte[] buf = _ms.GetBuffer();
        try
        {
            return SecretBuffer.CopyFrom(buf.AsSpan(0, (int)_ms.Length));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buf);
        }
    }
}

internal ref struct WireReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _name;
    private int _pos;

    internal WireReader(ReadOnlySpan<byte> data, WireKind kind, FrostCiphersuite suite, string name)
    {
        _data = data;
        _name = name;
        if (data.Length < 3 || data[0] != WireWriter.Version || data[1] != (byte)kind)
        {
            throw ThresholdErrors.WrongKind(name, kind.ToString());
        }

        if (data[2] != suite.WireId)
        {
            throw ThresholdErrors.WrongSuite(name, suite);
        }

        _pos = 3;
        Suite = suite;
    }

    internal FrostCiphersuite Suite { get; }

    /// <summary>Reads the suite byte of a package without a known suite.</summary>
    internal static FrostCiphersuite PeekSuite(ReadOnlySpan<byte> data, string name)
    {
        if (data.Length < 3)
        {
            throw ThresholdErrors.Truncated(name);
        }

        byte id = data[2];
        return FrostCiphersuite.All.FirstOrDefault(s => s.WireId == id) ?? throw ThresholdErrors.Format(name, "unknown ciphersuite");
    }

    internal ReadOnlySpan<byte> Raw(int n)
    {
        if (n < 0 || _data.Length - _pos < n)
        {
            throw ThresholdErrors.Truncated(_name);
        }

        ReadOnlySpan<byte> r = _data.Slice(_pos, n);
        _pos += n;
        return r;
    }

    internal byte Byte() => Raw(1)[0];

    internal int U16() => BinaryPrimitives.ReadUInt16BigEndian(Raw(2));

    internal uint U32() => BinaryPrimitives.ReadUInt32BigEndian(Raw(4));

    internal ReadOnlySpan<byte> Bytes(int max = 1 << 24)
    {
        uint n = U32();
        if (n > (uint)max)
        {
            throw ThresholdErrors.Format(_name, "field too long");
        }

        return Raw((int)n);
    }

    internal Scalar Scalar(string field)
        => Suite.TryReadScalar(Raw(Suite.ScalarSizeInBytes), out Scalar? s) ? s : throw ThresholdErrors.InvalidScalar($"{_name}.{field}");

    internal Element Element(string field)
        => Suite.TryReadElement(Raw(Suite.ElementSizeInBytes), out Element? e) ? e : throw ThresholdErrors.InvalidElement($"{_name}.{field}");

    internal Identifier Id(string field) => Identifier.Read(Suite, Raw(Suite.ScalarSizeInBytes), $"{_name}.{field}");

    internal readonly void End()
    {
        if (_pos != _data.Length)
        {
            throw ThresholdErrors.TrailingBytes(_name);
        }
    }
}

/// <summary>
/// A length-prefixed Fiat–Shamir transcript (ATTACKS.md "Ambiguous Fiat–Shamir transcripts"): every item is
/// written as u32 length ‖ bytes after a u32 label length ‖ label, so no two different item sequences share an
/// encoding. Hashed with the ciphersuite's HDKG into a full-length challenge.
/// </summary>
internal sealed class Transcript
{
    private readonly MemoryStream _ms;

    /// <param name="domain">The domain separation string.</param>
    /// <param name="capacity">For transcripts that hold a secret: at least the final size, so the stream never
    /// reallocates and leaves a stale copy behind (<see cref="HashAndClear"/> zeroes the one buffer).</param>
    internal Transcript(string domain, int capacity = 256)
    {
        _ms = new MemoryStream(capacity);
        Append("domain", System.Text.Encoding.ASCII.GetBytes(domain));
    }

    internal Transcript Append(string label, ReadOnlySpan<byte> item)
    {
        Span<byte> len = stackalloc byte[4];
        byte[] l = System.Text.Encoding.ASCII.GetBytes(label);
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)l.Length);
        _ms.Write(len);
        _ms.Write(l);
        BinaryPrimitives.WriteUInt32BigEndian(len, checked((uint)item.Length));
        _ms.Write(len);
        _ms.Write(item);
        return this;
    }

    internal Transcript Append(string label, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        return Append(label, b);
    }

    internal byte[] ToArray() => _ms.ToArray();

    /// <summary>SHA-256 of the transcript, then zeroes its buffer (for transcripts that hold a secret).</summary>
    internal byte[] HashAndClear()
    {
        byte[] buf = _ms.GetBuffer();
        try
        {
            return System.Security.Cryptography.SHA256.HashData(buf.AsSpan(0, (int)_ms.Length));
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(buf);
        }
    }
}
