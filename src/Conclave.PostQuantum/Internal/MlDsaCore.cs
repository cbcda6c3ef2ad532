using System.Security.Cryptography;
using Conclave.Crypto.Randomness;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;

namespace Conclave.PostQuantum.Internal;

/// <summary>
/// ML-DSA (FIPS 204) through BouncyCastle: key generation from the 32-byte seed ξ (Algorithm 6, ML-DSA.KeyGen_internal),
/// pure signing with a context string (Algorithm 2, ML-DSA.Sign; hedged or deterministic per §3.4) and verification
/// (Algorithm 3, ML-DSA.Verify). Bytes in, bytes out.
/// </summary>
internal static class MlDsaCore
{
    internal static byte[] DerivePublicKey(MLDsaParameters parameters, ReadOnlySpan<byte> seed)
    {
        byte[] seedCopy = seed.ToArray();
        try
        {
            return MLDsaPrivateKeyParameters.FromSeed(parameters, seedCopy).GetPublicKeyEncoded();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seedCopy);
        }
    }

    /// <summary>ML-DSA.Sign(sk, M, ctx) with sk expanded from the seed ξ.</summary>
    internal static byte[] SignWithSeed(
        MLDsaParameters parameters, ReadOnlySpan<byte> seed, ReadOnlySpan<byte> message, ReadOnlySpan<byte> context,
        bool deterministic, IRandomSource random)
    {
        byte[] seedCopy = seed.ToArray();
        try
        {
            MLDsaPrivateKeyParameters privateKey = MLDsaPrivateKeyParameters.FromSeed(parameters, seedCopy);
            return Sign(privateKey, message, context, deterministic, random);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seedCopy);
        }
    }

    /// <summary>
    /// ML-DSA.Sign with an already expanded private key. Hedged signing draws the 32-byte <c>rnd</c> from
    /// <paramref name="random"/> (one 32-byte draw); deterministic signing uses rnd = {0}^32 (FIPS 204 §3.4, Algorithm 2 line 5).
    /// </summary>
    internal static byte[] Sign(
        MLDsaPrivateKeyParameters privateKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> context,
        bool deterministic, IRandomSource random)
        => ContextSigning.Sign(new MLDsaSigner(privateKey.Parameters, deterministic), privateKey, message, context, deterministic, random);

    /// <summary>ML-DSA.Verify(pk, M, σ, ctx); false for any malformed input.</summary>
    internal static bool Verify(
        MLDsaParameters parameters, int publicKeySize, int signatureSize,
        ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature, ReadOnlySpan<byte> context)
        => ContextSigning.Verify(() => new MLDsaSigner(parameters, deterministic: false), encoded => MLDsaPublicKeyParameters.FromEncoding(parameters, encoded),
            publicKeySize, signatureSize, publicKey, message, signature, context);
}
