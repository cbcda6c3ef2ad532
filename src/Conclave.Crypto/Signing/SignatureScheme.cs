namespace Conclave.Crypto.Signing;

/// <summary>What a scheme signs.</summary>
public enum SignInputKind
{
    /// <summary>The message itself, of any length (Schnorr, EdDSA, post-quantum).</summary>
    Message,

    /// <summary>A 32-byte digest the caller computed (ECDSA: Keccak-256 for Ethereum, SHA-256d for Bitcoin).</summary>
    Digest32,
}

/// <summary>A signature and, for ECDSA on secp256k1, the recovery id (0 to 3) Ethereum needs.</summary>
public sealed record SignatureResult(byte[] Signature, int? RecoveryId = null);

/// <summary>
/// A signature scheme: a stateless singleton named as in DESIGN.md (the names are part of the API).
/// Single-key, HSM, threshold and post-quantum schemes all verify through this type; how a scheme signs
/// depends on where its secret lives (<see cref="ISigningKey"/>).
/// </summary>
public abstract class SignatureScheme
{
    /// <summary>The scheme name, for example <c>ecdsa-secp256k1</c>.</summary>
    public abstract string Name { get; }

    public abstract SignInputKind InputKind { get; }

    public abstract int PublicKeySizeInBytes { get; }

    /// <summary>The signature size; for variable-size encodings, the maximum.</summary>
    public abstract int SignatureSizeInBytes { get; }

    /// <summary>
    /// Verifies a signature. Returns false for any malformed public key, input or signature; never throws for bad data.
    /// </summary>
    public abstract bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> input, ReadOnlySpan<byte> signature);

    /// <summary>Checks that an input has the form this scheme signs.</summary>
    public void ValidateInput(ReadOnlySpan<byte> input)
    {
        if (InputKind == SignInputKind.Digest32 && input.Length != 32)
        {
            throw CryptoErrors.InvalidLength("digest", input.Length, 32);
        }
    }

    public override string ToString() => Name;
}

/// <summary>A key that can sign; its secret stays wherever the implementation keeps it (memory, HSM, signer nodes).</summary>
public interface ISigningKey : IDisposable
{
    SignatureScheme Scheme { get; }

    /// <summary>The public key in the scheme's canonical encoding.</summary>
    ReadOnlyMemory<byte> PublicKey { get; }

    /// <summary>Signs a message or digest, according to <see cref="SignatureScheme.InputKind"/>.</summary>
    SignatureResult Sign(ReadOnlySpan<byte> input);
}
