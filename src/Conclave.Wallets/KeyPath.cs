using System.Globalization;
using System.Text;

namespace Conclave.Wallets;

/// <summary>
/// A BIP-32 derivation path ("The key tree", BIP-44 "Path levels"), such as <c>m/44'/60'/0'/0/0</c>: a sequence of
/// 32-bit child indices where a hardened index is <c>i + 2^31</c>. Immutable; <c>default</c> is the root <c>m</c>.
/// <para>
/// Accepted text: <c>m</c> followed by zero to 255 components <c>/N</c>, where N is a decimal number below 2^31
/// without sign, spaces or leading zeros, optionally followed by one hardened marker <c>'</c>, <c>h</c> or <c>H</c>.
/// Anything else is rejected with a message naming the component that is wrong.
/// </para>
/// </summary>
public readonly struct KeyPath : IEquatable<KeyPath>
{
    /// <summary>Indices at or above this value are hardened (BIP-32 "Child key derivation (CKD) functions").</summary>
    public const uint HardenedOffset = 0x8000_0000;

    /// <summary>BIP-32 serializes the depth in one byte.</summary>
    public const int MaxDepth = 255;

    private readonly uint[]? _indices;

    private KeyPath(uint[] indices) => _indices = indices;

    /// <summary>The master key's path, <c>m</c>.</summary>
    public static KeyPath Root => default;

    /// <summary>The indices, hardened ones with the 2^31 bit set.</summary>
    public ReadOnlySpan<uint> Indices => _indices;

    public int Depth => _indices?.Length ?? 0;

    public bool IsRoot => Depth == 0;

    /// <summary>True when every index is hardened (what ed25519 under SLIP-10 requires).</summary>
    public bool IsHardenedOnly
    {
        get
        {
            foreach (uint i in Indices)
            {
                if (!IsHardened(i))
                {
                    return false;
                }
            }

            return true;
        }
    }

    public static bool IsHardened(uint index) => index >= HardenedOffset;

    /// <summary>The hardened index for <paramref name="index"/> (which must be below 2^31).</summary>
    public static uint Hardened(uint index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, HardenedOffset);
        return index | HardenedOffset;
    }

    public static KeyPath FromIndices(ReadOnlySpan<uint> indices)
    {
        if (indices.Length > MaxDepth)
        {
            throw WalletErrors.Path($"more than {MaxDepth} levels");
        }

        return indices.IsEmpty ? default : new KeyPath(indices.ToArray());
    }

    /// <summary>This path with one more index.</summary>
    public KeyPath Append(uint index)
    {
        if (Depth >= MaxDepth)
        {
            throw WalletErrors.Path($"more than {MaxDepth} levels");
        }

        uint[] next = new uint[Depth + 1];
        Indices.CopyTo(next);
        next[^1] = index;
        return new KeyPath(next);
    }

    /// <summary>This path followed by every index of <paramref name="relative"/>.</summary>
    public KeyPath Append(KeyPath relative)
    {
        if (Depth + relative.Depth > MaxDepth)
        {
            throw WalletErrors.Path($"more than {MaxDepth} levels");
        }

        return FromIndices([.. Indices, .. relative.Indices]);
    }

    /// <summary>The parent path; the root has none.</summary>
    public KeyPath Parent => Depth switch
    {
        0 => throw new InvalidOperationException("the root path has no parent"),
        _ => FromIndices(Indices[..^1]),
    };

    /// <summary>Parses a path or throws <see cref="Crypto.CryptoFormatException"/> that names what is wrong.</summary>
    public static KeyPath Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParseCore(text, out KeyPath path, out string? error) ? path : throw WalletErrors.Path(error!);
    }

    public static bool TryParse(string? text, out KeyPath path)
    {
        if (text is null)
        {
            path = default;
            return false;
        }

        return TryParseCore(text, out path, out _);
    }

    private static bool TryParseCore(string text, out KeyPath path, out string? error)
    {
        path = default;
        if (text.Length == 0)
        {
            error = "empty";
            return false;
        }

        if (text[0] != 'm')
        {
            error = "a path must start with 'm' (for example m/44'/60'/0'/0/0)";
            return false;
        }

        if (text.Length == 1)
        {
            error = null;
            return true;
        }

        if (text[1] != '/')
        {
            error = "'m' must be followed by '/'";
            return false;
        }

        string[] parts = text[2..].Split('/');
        if (parts.Length > MaxDepth)
        {
            error = $"more than {MaxDepth} levels";
            return false;
        }

        uint[] indices = new uint[parts.Length];
        for (int p = 0; p < parts.Length; p++)
        {
            if (!TryParseComponent(parts[p], out indices[p], out string? reason))
            {
                error = $"component {p + 1} {reason}";
                return false;
            }
        }

        path = new KeyPath(indices);
        error = null;
        return true;
    }

    private static bool TryParseComponent(string part, out uint index, out string? reason)
    {
        index = 0;
        bool hardened = part.Length > 0 && part[^1] is '\'' or 'h' or 'H';
        string digits = hardened ? part[..^1] : part;
        if (digits.Length == 0)
        {
            reason = part.Length == 0 ? "is empty" : "has no number before the hardened marker";
            return false;
        }

        foreach (char c in digits)
        {
            if (c is < '0' or > '9')
            {
                reason = "is not a number followed by an optional ', h or H";
                return false;
            }
        }

        if (digits.Length > 1 && digits[0] == '0')
        {
            reason = "has a leading zero";
            return false;
        }

        if (digits.Length > 10 || !uint.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out uint value) || value >= HardenedOffset)
        {
            reason = "is out of range (an index must be below 2^31; mark hardened indices with ', h or H)";
            return false;
        }

        index = hardened ? value | HardenedOffset : value;
        reason = null;
        return true;
    }

    /// <summary>The path with <c>'</c> for hardened indices, e.g. <c>m/44'/60'/0'/0/0</c>.</summary>
    public override string ToString() => ToString('\'');

    /// <summary>The path with the given hardened marker: <c>'</c>, <c>h</c> or <c>H</c>.</summary>
    public string ToString(char hardenedMarker)
    {
        if (hardenedMarker is not ('\'' or 'h' or 'H'))
        {
            throw new ArgumentOutOfRangeException(nameof(hardenedMarker), "the hardened marker must be ', h or H");
        }

        var sb = new StringBuilder("m");
        foreach (uint i in Indices)
        {
            sb.Append('/');
            sb.Append((i & ~HardenedOffset).ToString(CultureInfo.InvariantCulture));
            if (IsHardened(i))
            {
                sb.Append(hardenedMarker);
            }
        }

        return sb.ToString();
    }

    public bool Equals(KeyPath other) => Indices.SequenceEqual(other.Indices);

    public override bool Equals(object? obj) => obj is KeyPath other && Equals(other);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (uint i in Indices)
        {
            h.Add(i);
        }

        return h.ToHashCode();
    }

    public static bool operator ==(KeyPath left, KeyPath right) => left.Equals(right);

    public static bool operator !=(KeyPath left, KeyPath right) => !left.Equals(right);
}
