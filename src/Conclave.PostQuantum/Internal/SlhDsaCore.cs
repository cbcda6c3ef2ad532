using System.Security.Cryptography;
using Conclave.Crypto.Randomness;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;

namespace Conclave.PostQuantum.Internal;

/// <summary>
/// SLH-DSA (FIPS 205) through BouncyCastle: key generation from the stored seeds (Algorithm 18, slh_keygen_internal),
/// pure signing with a context string (Algorithm 22, slh_sign; hedged, or deterministic with opt_rand = PK.seed) and
/// verification (Algorithm 24, slh_verify).
/// </summary>
internal static class SlhDsaCore
{
    /// <summary>
    /// slh_keygen_internal(SK.seed, SK.prf, PK.seed) for <paramref name="seeds"/> = SK.seed ‖ SK.prf ‖ PK.seed (3n bytes):
    /// BouncyCastle's generator draws the three seeds from its random source in that order (FIPS 205 Algorithm 21), so
    /// replaying the stored bytes reproduces the key; the ACVP keyGen vectors check this.
    /// </summary>
    internal static SlhDsaPrivateKeyParameters ExpandSeeds(SlhDsaParameters parameters, ReadOnlySpan<byte> seeds)
    {
        byte[] copy = seeds.ToArray();
        try
        {
            var replay = new ReplaySource(copy);
            var generator = new SlhDsaKeyPairGenerator();
            generator.Init(new SlhDsaKeyGenerationParameters(RandomSourceAdapter.Wrap(replay), parameters));
            var privateKey = (SlhDsaPrivateKeyParameters)generator.GenerateKeyPair().Private;
            if (!replay.Exhausted)
            {
                throw new InvalidOperationException("SLH-DSA key generation did not consume exactly SK.seed, SK.prf and PK.seed");
            }

            return privateKey;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(copy);
        }
    }

    internal static byte[] DerivePublicKey(SlhDsaParameters parameters, ReadOnlySpan<byte> seeds)
        => ExpandSeeds(parameters, seeds).GetPublicKeyEncoded();

    /// <summary>
    /// slh_sign(M, ctx, SK): hedged draws the n-byte opt_rand from <paramref name="random"/>; deterministic uses
    /// opt_rand = PK.seed (FIPS 205 Algorithm 19 line 2 / Algorithm 22).
    /// </summary>
    internal static byte[] Sign(
        SlhDsaPrivateKeyParameters privateKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> context,
        bool deterministic, IRandomSource random)
        => ContextSigning.Sign(new SlhDsaSigner(privateKey.Parameters, deterministic), privateKey, message, context, deterministic, random);

    /// <summary>slh_verify(M, SIG, ctx, PK); false for any malformed input.</summary>
    internal static bool Verify(
        SlhDsaParameters parameters, int publicKeySize, int signatureSize,
        ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature, ReadOnlySpan<byte> context)
        => ContextSigning.Verify(() => new SlhDsaSigner(parameters, deterministic: false), encoded => SlhDsaPublicKeyParameters.FromEncoding(parameters, encoded),
            publicKeySize, signatureSize, publicKey, message, signature, context);
}
