using System.Security.Cryptography;
using Conclave.Crypto.Secp256k1;
using Conclave.Wallets.Internal;

namespace Conclave.Wallets.Hd;

/// <summary>
/// A public node of a BIP-32 secp256k1 key tree (an xpub): public key, chain code and position. It derives
/// non-hardened children (CKDpub, via <see cref="Bip32PublicDerivation"/>) and refuses hardened ones.
/// Immutable and not secret, though an xpub together with any non-hardened child private key reveals the parent
/// private key (BIP-32 "Security"), so share xpubs deliberately.
/// </summary>
public sealed class ExtendedPublicKey : IEquatable<ExtendedPublicKey>
{
    private readonly byte[] _publicKey;
    private readonly byte[] _chainCode;

    internal ExtendedPublicKey(Secp256k1Point point, ReadOnlySpan<byte> chainCode, byte depth, uint parentFingerprint, uint childNumber)
    {
        Point = point;
        _publicKey = point.ToCompressed();
        _chainCode = chainCode.ToArray();
        Depth = depth;
        ParentFingerprint = parentFingerprint;
        ChildNumber = childNumber;
        Fingerprint = Hash160.Fingerprint(_publicKey);
    }

    /// <summary>An extended public key from its parts (for keys held elsewhere, e.g. a threshold group key).</summary>
    public static ExtendedPublicKey Create(Secp256k1Point publicKey, ReadOnlySpan<byte> chainCode, byte depth = 0, uint parentFingerprint = 0, uint childNumber = 0)
    {
        if (publicKey.IsIdentity)
        {
            throw WalletErrors.PublicKey(nameof(publicKey), "the point at infinity");
        }

        if (chainCode.Length != 32)
        {
            throw new Crypto.CryptoFormatException(nameof(chainCode), $"{nameof(chainCode)} must be 32 bytes, got {chainCode.Length}");
        }

        return new ExtendedPublicKey(publicKey, chainCode, depth, parentFingerprint, childNumber);
    }

    public Secp256k1Point Point { get; }

    /// <summary>The 33-byte SEC1 compressed public key.</summary>
    public ReadOnlySpan<byte> PublicKey => _publicKey;

    public ReadOnlySpan<byte> ChainCode => _chainCode;

    public byte Depth { get; }

    public uint ParentFingerprint { get; }

    public uint ChildNumber { get; }

    public uint Fingerprint { get; }

    /// <summary>The non-hardened child (BIP-32 CKDpub). A hardened index is refused.</summary>
    public ExtendedPublicKey DeriveChild(uint index)
    {
        if (KeyPath.IsHardened(index))
        {
            throw WalletErrors.HardenedFromPublic(Depth + 1);
        }

        if (Depth == KeyPath.MaxDepth)
        {
            throw WalletErrors.DepthOverflow();
        }

        Bip32ChildTweak t = Bip32PublicDerivation.ComputeTweak(Point, _chainCode, index);
        return new ExtendedPublicKey(t.ChildPublicKey, t.ChildChainCode.Span, (byte)(Depth + 1), Fingerprint, index);
    }

    /// <summary>The descendant along a non-hardened path taken relative to this key; any hardened index is refused before deriving.</summary>
    public ExtendedPublicKey Derive(KeyPath path)
    {
        ReadOnlySpan<uint> indices = path.Indices;
        for (int d = 0; d < indices.Length; d++)
        {
            if (KeyPath.IsHardened(indices[d]))
            {
                throw WalletErrors.HardenedFromPublic(Depth + d + 1);
            }
        }

        if (Depth + path.Depth > KeyPath.MaxDepth)
        {
            throw WalletErrors.DepthOverflow();
        }

        ExtendedPublicKey current = this;
        foreach (uint index in indices)
        {
            current = current.DeriveChild(index);
        }

        return current;
    }

    public ExtendedPublicKey Derive(string path) => Derive(KeyPath.Parse(path));

    /// <summary>The BIP-32 serialization: xpub (mainnet, default) or tpub.</summary>
    public string ToExtendedKeyString(Bip32Network? network = null)
        => ExtendedKeyCodec.Encode((network ?? Bip32Network.Mainnet).PublicVersion, Depth, ParentFingerprint, ChildNumber, _chainCode, _publicKey);

    public static ExtendedPublicKey Parse(string text) => Parse(text, out _);

    /// <summary>Parses an xpub or tpub, applying every check of BIP-32 test vector 5.</summary>
    public static ExtendedPublicKey Parse(string text, out Bip32Network network)
    {
        byte[] payload = ExtendedKeyCodec.Decode(text, out network, out bool isPrivate);
        try
        {
            if (isPrivate)
            {
                throw WalletErrors.ExtendedKey("it is an extended private key (xprv/tprv), not a public one");
            }

            var f = new ExtendedKeyCodec.Fields(payload);
            if (f.KeyData[0] is not (0x02 or 0x03))
            {
                throw WalletErrors.ExtendedKey("public key must be SEC1 compressed (prefix 02 or 03)");
            }

            if (!Secp256k1Point.TryParse(f.KeyData, out Secp256k1Point point))
            {
                throw WalletErrors.ExtendedKey("public key is not a point on secp256k1");
            }

            return new ExtendedPublicKey(point, f.ChainCode, f.Depth, f.ParentFingerprint, f.ChildNumber);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(payload);
        }
    }

    public static bool TryParse(string? text, out ExtendedPublicKey? key)
    {
        key = null;
        if (text is null)
        {
            return false;
        }

        try
        {
            key = Parse(text);
            return true;
        }
        catch (Crypto.CryptoFormatException)
        {
            return false;
        }
    }

    public bool Equals(ExtendedPublicKey? other)
        => other is not null && Depth == other.Depth && ParentFingerprint == other.ParentFingerprint && ChildNumber == other.ChildNumber
           && _publicKey.AsSpan().SequenceEqual(other._publicKey) && _chainCode.AsSpan().SequenceEqual(other._chainCode);

    public override bool Equals(object? obj) => Equals(obj as ExtendedPublicKey);

    public override int GetHashCode() => HashCode.Combine(Fingerprint, Depth, ChildNumber);

    /// <summary>The mainnet xpub.</summary>
    public override string ToString() => ToExtendedKeyString();
}
