using Conclave.Crypto.Randomness;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Parameters;

namespace Conclave.PostQuantum.Internal;

/// <summary>
/// Drives a BouncyCastle ML-DSA or SLH-DSA signer with a FIPS 204/205 context string: the part of signing and
/// verification both algorithms share (the algorithm-specific part is only which signer and key type).
/// </summary>
internal static class ContextSigning
{
    /// <summary>Signs; hedged signing draws its randomness from <paramref name="random"/>, deterministic signing draws none.</summary>
    internal static byte[] Sign(ISigner signer, AsymmetricKeyParameter privateKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> context,
        bool deterministic, IRandomSource random)
    {
        if (context.Length > PostQuantumErrors.MaxContextLength)
        {
            throw PostQuantumErrors.ContextTooLong("context", context.Length);
        }

        ICipherParameters keyParameters = deterministic
            ? privateKey
            : new ParametersWithRandom(privateKey, RandomSourceAdapter.Wrap(random));
        signer.Init(true, new ParametersWithContext(keyParameters, context));
        signer.BlockUpdate(message);
        return signer.GenerateSignature();
    }

    /// <summary>Verifies; false for any malformed input (wrong sizes, a key that does not decode, a long context).</summary>
    internal static bool Verify(Func<ISigner> verifier, Func<byte[], AsymmetricKeyParameter> decodeKey, int publicKeySize, int signatureSize,
        ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature, ReadOnlySpan<byte> context)
    {
        if (publicKey.Length != publicKeySize || signature.Length != signatureSize || context.Length > PostQuantumErrors.MaxContextLength)
        {
            return false;
        }

        try
        {
            AsymmetricKeyParameter key = decodeKey(publicKey.ToArray());
            ISigner v = verifier();
            v.Init(false, new ParametersWithContext(key, context));
            v.BlockUpdate(message);
            return v.VerifySignature(signature.ToArray());
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
