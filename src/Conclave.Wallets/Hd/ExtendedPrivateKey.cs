using System.Buffers.Binary;
using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Secp256k1;
using Conclave.Wallets.Internal;

namespace Conclave.Wallets.Hd;

/// <summary>
/// A private node of a BIP-32 / SLIP-10 key tree: the private key, its chain code, the public key and the node's
/// position (depth, parent fingerprint, child number). The private key and chain code live in guarded memory
/// (<see cref="SecretBuffer"/>), zeroed on <see cref="Dispose"/>; <see cref="ToString"/> shows only public data.
/// <para>
/// Derivation follows SLIP-10 "Private parent key → private child key", which is BIP-32 CKDpriv for secp256k1 plus
/// a retry rule for the invalid-key case (IL ≥ n or a zero key, probability below 2^-127 on secp256k1, reachable on
/// nist256p1): instead of skipping the index as BIP-32 says, SLIP-10 recomputes I = HMAC-SHA512(c, 0x01 || IR || i).
/// Conclave uses the SLIP-10 rule on every curve, and the same rule in public derivation, so private and public
/// derivation always agree.
/// </para>
/// </summary>
public sealed class ExtendedPrivateKey : IDisposable
{
    private const int KeySize = 32;
    private const int ChainCodeSize = 32;

    private readonly SecretBuffer _secret; // private key (32) || chain code (32)
    private readonly byte[] _serializedPublicKey; // 33 bytes: SEC1 compressed, or 0x00 || key for the 25519 curves

    private ExtendedPrivateKey(HdCurve curve, SecretBuffer secret, byte depth, uint parentFingerprint, uint childNumber)
    {
        Curve = curve;
        _secret = secret;
        Depth = depth;
        ParentFingerprint = parentFingerprint;
        ChildNumber = childNumber;
        _serializedPublicKey = new byte[33];
        curve.Ops.WriteSerializedPublicKey(secret.ReadOnlySpan[..KeySize], _serializedPublicKey);
        Fingerprint = Hash160.Fingerprint(_serializedPublicKey);
    }

    public HdCurve Curve { get; }

    /// <summary>0 for the master key.</summary>
    public byte Depth { get; }

    /// <summary>The first 4 bytes of the parent's HASH160 identifier, big-endian; 0 for the master key.</summary>
    public uint ParentFingerprint { get; }

    /// <summary>The index this key was derived with (hardened ones include 2^31); 0 for the master key.</summary>
    public uint ChildNumber { get; }

    /// <summary>This key's fingerprint: the first 32 bits of HASH160 of its (SLIP-10 serialized) public key.</summary>
    public uint Fingerprint { get; }

    /// <summary>The public key: 33-byte SEC1 compressed (secp256k1, nist256p1) or the 32-byte key (ed25519, curve25519).</summary>
    public ReadOnlySpan<byte> PublicKey => Curve.PublicKeySizeInBytes == 33 ? _serializedPublicKey : _serializedPublicKey.AsSpan(1);

    /// <summary>A copy of the chain code.</summary>
    public byte[] GetChainCode() => _secret.ReadOnlySpan[KeySize..].ToArray();

    /// <summary>
    /// The master key (BIP-32 "Master key generation", SLIP-10 "Master key generation"): I = HMAC-SHA512(curve key,
    /// seed); k = IL, c = IR; for secp256k1 and nist256p1, while IL is 0 or ≥ n, I = HMAC-SHA512(curve key, I).
    /// The seed must be 16 to 64 bytes (BIP-32: 128 to 512 bits).
    /// </summary>
    public static ExtendedPrivateKey FromSeed(ReadOnlySpan<byte> seed, HdCurve? curve = null)
    {
        curve ??= HdCurve.Secp256k1;
        if (seed.Length is < 16 or > 64)
        {
            throw WalletErrors.SeedLength(seed.Length);
        }

        SecretBuffer secret = SecretBuffer.Allocate(KeySize + ChainCodeSize, SecretMemoryKind.Guarded);
        Span<byte> i = stackalloc byte[64];
        try
        {
            HMACSHA512.HashData(curve.MasterHmacKey, seed, i);
            while (curve.Ops.AddsTweak && !curve.Ops.IsValidPrivateKey(i[..KeySize]))
            {
                HMACSHA512.HashData(curve.MasterHmacKey, i, i);
            }

            i.CopyTo(secret.Span);
            return new ExtendedPrivateKey(curve, secret, 0, 0, 0);
        }
        catch
        {
            secret.Dispose();
            throw;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(i);
        }
    }

    /// <summary>The child with the given index (hardened when index ≥ 2^31). See the class remarks for the retry rule.</summary>
    public ExtendedPrivateKey DeriveChild(uint index) => DeriveChild(index, SecretMemoryKind.Guarded);

    private ExtendedPrivateKey DeriveChild(uint index, SecretMemoryKind memory)
    {
        ReadOnlySpan<byte> secret = Secret;
        if (!KeyPath.IsHardened(index) && !Curve.SupportsNonHardenedDerivation)
        {
            throw WalletErrors.HardenedOnly(Curve.Name, Depth + 1);
        }

        if (Depth == KeyPath.MaxDepth)
        {
            throw WalletErrors.DepthOverflow();
        }

        ReadOnlySpan<byte> key = secret[..KeySize];
        ReadOnlySpan<byte> chainCode = secret[KeySize..];
        SecretBuffer child = SecretBuffer.Allocate(KeySize + ChainCodeSize, memory);
        Span<byte> data = stackalloc byte[37];
        Span<byte> i = stackalloc byte[64];
        try
        {
            if (KeyPath.IsHardened(index))
            {
                data[0] = 0;
                key.CopyTo(data[1..33]);
            }
            else
            {
                _serializedPublicKey.CopyTo(data);
            }

            BinaryPrimitives.WriteUInt32BigEndian(data[33..], index);
            HMACSHA512.HashData(chainCode, data, i);
            if (Curve.Ops.AddsTweak)
            {
                while (!Curve.Ops.TryAddTweak(i[..KeySize], key, child.Span[..KeySize]))
                {
                    data[0] = 1;
                    i[KeySize..].CopyTo(data[1..33]);
                    HMACSHA512.HashData(chainCode, data, i);
                }
            }
            else
            {
                i[..KeySize].CopyTo(child.Span[..KeySize]);
            }

            i[KeySize..].CopyTo(child.Span[KeySize..]);
            return new ExtendedPrivateKey(Curve, child, (byte)(Depth + 1), Fingerprint, index);
        }
        catch
        {
            child.Dispose();
            throw;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(data);
            CryptographicOperations.ZeroMemory(i);
        }
    }

    /// <summary>
    /// The descendant along <paramref name="path"/>, taken relative to this key (for a master key, <c>m/44'/60'/0'/0/0</c>
    /// is the usual absolute path). Intermediate keys live in pinned memory and are disposed (zeroed) at once; the
    /// result is in guarded memory. The path is checked before any derivation.
    /// </summary>
    public ExtendedPrivateKey Derive(KeyPath path)
    {
        _ = Secret;
        if (!Curve.SupportsNonHardenedDerivation)
        {
            ReadOnlySpan<uint> indices = path.Indices;
            for (int d = 0; d < indices.Length; d++)
            {
                if (!KeyPath.IsHardened(indices[d]))
                {
                    throw WalletErrors.HardenedOnly(Curve.Name, Depth + d + 1);
                }
            }
        }

        if (Depth + path.Depth > KeyPath.MaxDepth)
        {
            throw WalletErrors.DepthOverflow();
        }

        ExtendedPrivateKey current = this;
        try
        {
            ReadOnlySpan<uint> steps = path.Indices;
            for (int s = 0; s < steps.Length; s++)
            {
                ExtendedPrivateKey next = current.DeriveChild(steps[s], s == steps.Length - 1 ? SecretMemoryKind.Guarded : SecretMemoryKind.Pinned);
                if (!ReferenceEquals(current, this))
                {
                    current.Dispose();
                }

                current = next;
            }

            return ReferenceEquals(current, this) ? Clone() : current;
        }
        catch
        {
            if (!ReferenceEquals(current, this))
            {
                current.Dispose();
            }

            throw;
        }
    }

    /// <summary>Parses the path and derives (see <see cref="Derive(KeyPath)"/>).</summary>
    public ExtendedPrivateKey Derive(string path) => Derive(KeyPath.Parse(path));

    private ExtendedPrivateKey Clone()
        => new(Curve, SecretBuffer.CopyFrom(Secret, SecretMemoryKind.Guarded), Depth, ParentFingerprint, ChildNumber);

    /// <summary>A copy of the 32-byte private key (for ed25519 the RFC 8032 seed) in a buffer the caller disposes.</summary>
    public SecretBuffer ExportPrivateKey() => SecretBuffer.CopyFrom(Secret[..KeySize]);

    /// <summary>The public half (BIP-32 "Private parent key → public child key" with N(k)); secp256k1 only.</summary>
    public ExtendedPublicKey ToExtendedPublicKey()
    {
        ReadOnlySpan<byte> secret = Secret;
        if (Curve != HdCurve.Secp256k1)
        {
            throw WalletErrors.UnsupportedCurve(Curve.Name, "an extended public key (BIP-32 public derivation)");
        }

        return new ExtendedPublicKey(Secp256k1Point.Parse(_serializedPublicKey), secret[KeySize..], Depth, ParentFingerprint, ChildNumber);
    }

    /// <summary>
    /// The BIP-32 serialization (xprv or tprv); secp256k1 only. The result is a secret in an immutable string:
    /// prefer keeping the key in this object, and never log the string.
    /// </summary>
    public string ToExtendedKeyString(Bip32Network? network = null)
    {
        ReadOnlySpan<byte> secret = Secret;
        if (Curve != HdCurve.Secp256k1)
        {
            throw WalletErrors.UnsupportedCurve(Curve.Name, "BIP-32 xprv serialization");
        }

        Span<byte> keyData = stackalloc byte[33];
        try
        {
            keyData[0] = 0;
            secret[..KeySize].CopyTo(keyData[1..]);
            return ExtendedKeyCodec.Encode((network ?? Bip32Network.Mainnet).PrivateVersion, Depth, ParentFingerprint, ChildNumber, secret[KeySize..], keyData);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keyData);
        }
    }

    /// <summary>Parses an xprv or tprv, applying every check of BIP-32 test vector 5.</summary>
    public static ExtendedPrivateKey Parse(string text) => Parse(text, out _);

    /// <summary>Parses an xprv or tprv and reports which network's version it carries.</summary>
    public static ExtendedPrivateKey Parse(string text, out Bip32Network network)
    {
        byte[] payload = ExtendedKeyCodec.Decode(text, out network, out bool isPrivate);
        try
        {
            if (!isPrivate)
            {
                throw WalletErrors.ExtendedKey("it is an extended public key (xpub/tpub), not a private one");
            }

            var f = new ExtendedKeyCodec.Fields(payload);
            if (f.KeyData[0] != 0)
            {
                throw WalletErrors.ExtendedKey("private key data must start with 0x00");
            }

            if (!HdCurve.Secp256k1.Ops.IsValidPrivateKey(f.KeyData[1..]))
            {
                throw WalletErrors.ExtendedKey("private key is not in 1..n-1");
            }

            SecretBuffer secret = SecretBuffer.Allocate(KeySize + ChainCodeSize, SecretMemoryKind.Guarded);
            f.KeyData[1..].CopyTo(secret.Span[..KeySize]);
            f.ChainCode.CopyTo(secret.Span[KeySize..]);
            return new ExtendedPrivateKey(HdCurve.Secp256k1, secret, f.Depth, f.ParentFingerprint, f.ChildNumber);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(payload);
        }
    }

    public static bool TryParse(string? text, out ExtendedPrivateKey? key)
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

    public bool IsDisposed => _secret.IsDisposed;

    private ReadOnlySpan<byte> Secret
    {
        get
        {
            ObjectDisposedException.ThrowIf(_secret.IsDisposed, this);
            return _secret.ReadOnlySpan;
        }
    }

    public void Dispose() => _secret.Dispose();

    /// <summary>Public data only: curve, depth, child number and fingerprint.</summary>
    public override string ToString()
        => $"ExtendedPrivateKey({Curve.Name}, depth {Depth}, child {ChildNumber}, fingerprint {Fingerprint:x8})";
}
