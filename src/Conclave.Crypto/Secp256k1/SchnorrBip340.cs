using System.Security.Cryptography;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Signing;
using static Conclave.Crypto.Interop.Secp256k1Native;

namespace Conclave.Crypto.Secp256k1;

/// <summary>
/// <c>schnorr-bip340</c>: BIP-340 Schnorr signatures over secp256k1 through libsecp256k1's schnorrsig module.
/// Signs messages of any length (BIP-340 "Messages of arbitrary size"). Public key: 32-byte x-only.
/// Signing draws 32 bytes of auxiliary randomness (BIP-340 "Default Signing", step aux_rand).
/// </summary>
public sealed class SchnorrBip340 : SoftwareSignatureScheme
{
    public const string SchemeName = "schnorr-bip340";

    private SchnorrBip340() { }

    public static SchnorrBip340 Instance { get; } = new();

    public override string Name => SchemeName;

    public override SignInputKind InputKind => SignInputKind.Message;

    public override int PublicKeySizeInBytes => 32;

    public override int SignatureSizeInBytes => 64;

    public override int PrivateKeySizeInBytes => 32;

    protected override unsafe bool IsValidPrivateKeyCore(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != 32)
        {
            return false;
        }

        fixed (byte* k = privateKey)
        {
            return secp256k1_ec_seckey_verify(Secp256k1Context.Ptr, k) == 1;
        }
    }

    protected internal override byte[] DerivePublicKeyCore(ReadOnlySpan<byte> privateKey)
        => EcdsaSecp256k1.PublicKeyFromPrivate(privateKey).ToXOnly();

    protected internal override SignatureResult SignCore(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> input, IRandomSource random)
    {
        Span<byte> aux = stackalloc byte[32];
        try
        {
            random.Fill(aux);
            byte[] sig = new byte[64];
            Sign(privateKey, input, aux, sig);
            return new SignatureResult(sig);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(aux);
        }
    }

    /// <summary>BIP-340 signing with explicit auxiliary randomness (for the BIP's test vectors).</summary>
    public static unsafe void Sign(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> auxRand32, Span<byte> signature64)
    {
        if (privateKey.Length != 32)
        {
            throw CryptoErrors.InvalidLength("privateKey", privateKey.Length, 32);
        }

        if (auxRand32.Length != 32)
        {
            throw CryptoErrors.InvalidLength("auxRand", auxRand32.Length, 32);
        }

        if (signature64.Length != 64)
        {
            throw new ArgumentException("destination must be exactly 64 bytes", nameof(signature64));
        }

        Span<byte> keypair = stackalloc byte[KeypairSize];
        // secp256k1_schnorrsig_extraparams: magic[4], (pad 4), noncefp, ndata.
        Span<byte> extra = stackalloc byte[24];
        try
        {
            fixed (byte* k = privateKey)
            fixed (byte* kp = keypair)
            fixed (byte* m = message)
            fixed (byte* a = auxRand32)
            fixed (byte* s = signature64)
            fixed (byte* x = extra)
            {
                if (secp256k1_keypair_create(Secp256k1Context.Ptr, kp, k) != 1)
                {
                    throw CryptoErrors.InvalidPrivateKey("privateKey");
                }

                extra.Clear();
                x[0] = 0xda;
                x[1] = 0x6f;
                x[2] = 0xb3;
                x[3] = 0x8c;
                *(IntPtr*)(x + 16) = (IntPtr)a;
                byte dummy = 0;
                byte* mp = message.Length == 0 ? &dummy : m;
                if (secp256k1_schnorrsig_sign_custom(Secp256k1Context.Ptr, s, mp, (nuint)message.Length, kp, x) != 1)
                {
                    throw new CryptoOperationException("BIP-340 signing failed");
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keypair);
        }
    }

    public override unsafe bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> input, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != 32 || signature.Length != 64)
        {
            return false;
        }

        Span<byte> xonly = stackalloc byte[XonlySize];
        fixed (byte* pk = publicKey)
        fixed (byte* x = xonly)
        fixed (byte* m = input)
        fixed (byte* s = signature)
        {
            if (secp256k1_xonly_pubkey_parse(Secp256k1Context.Ptr, x, pk) != 1)
            {
                return false;
            }

            byte dummy = 0;
            byte* mp = input.Length == 0 ? &dummy : m;
            return secp256k1_schnorrsig_verify(Secp256k1Context.Ptr, s, mp, (nuint)input.Length, x) == 1;
        }
    }
}
