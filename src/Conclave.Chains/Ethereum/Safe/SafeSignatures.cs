using Conclave.Crypto.Secp256k1;

namespace Conclave.Chains.Ethereum.Safe;

/// <summary>
/// The <c>signatures</c> argument of Safe's <c>execTransaction</c> for owners that signed the transaction hash
/// directly with ECDSA: 65 bytes per owner, r ‖ s ‖ v with v = 27 + recovery id, sorted by owner address
/// ascending, because <c>checkNSignatures</c> requires each recovered owner to be greater than the one before it.
/// </summary>
public static class SafeSignatures
{
    /// <summary>Size of one packed owner signature.</summary>
    public const int SignatureSizeInBytes = 65;

    /// <summary>
    /// Packs owner signatures over <paramref name="safeTxHash"/>. Each signature is recovered to its owner's address
    /// first, so a signature that does not recover (or two from one owner) is refused here rather than on chain.
    /// </summary>
    /// <param name="safeTxHash">the 32-byte hash from <see cref="SafeTransaction.Hash"/>.</param>
    /// <param name="signatures">compact 64-byte (r ‖ s) ECDSA signatures with their recovery ids.</param>
    /// <exception cref="ArgumentException">a signature is malformed, does not recover, or two belong to one owner.</exception>
    public static byte[] Pack(ReadOnlySpan<byte> safeTxHash, IReadOnlyList<(byte[] Signature64, int RecoveryId)> signatures)
    {
        ArgumentNullException.ThrowIfNull(signatures);
        if (safeTxHash.Length != 32)
        {
            throw new ArgumentException("the Safe transaction hash must be 32 bytes", nameof(safeTxHash));
        }

        var owners = new List<(byte[] Owner, byte[] Packed)>(signatures.Count);
        for (int i = 0; i < signatures.Count; i++)
        {
            (byte[] sig, int recoveryId) = signatures[i];
            if (sig is not { Length: 64 } || recoveryId is < 0 or > 1)
            {
                throw new ArgumentException($"signature {i} must be 64 bytes (r ‖ s) with recovery id 0 or 1", nameof(signatures));
            }

            if (!EcdsaSecp256k1.TryRecover(safeTxHash, sig, recoveryId, out Secp256k1Point publicKey))
            {
                throw new ArgumentException($"signature {i} does not recover to a public key for this hash", nameof(signatures));
            }

            byte[] packed = new byte[SignatureSizeInBytes];
            sig.CopyTo(packed, 0);
            packed[64] = (byte)(27 + recoveryId);
            owners.Add((EthereumAddress.FromPublicKeyBytes(publicKey.ToCompressed()), packed));
        }

        owners.Sort((a, b) => a.Owner.AsSpan().SequenceCompareTo(b.Owner));
        byte[] result = new byte[owners.Count * SignatureSizeInBytes];
        for (int i = 0; i < owners.Count; i++)
        {
            if (i > 0 && owners[i].Owner.AsSpan().SequenceEqual(owners[i - 1].Owner))
            {
                throw new ArgumentException("two signatures belong to the same owner", nameof(signatures));
            }

            owners[i].Packed.CopyTo(result, i * SignatureSizeInBytes);
        }

        return result;
    }

    /// <summary>The owner addresses the packed signatures recover to, in order (what checkNSignatures computes).</summary>
    public static IReadOnlyList<byte[]> RecoverOwners(ReadOnlySpan<byte> safeTxHash, ReadOnlySpan<byte> packed)
    {
        if (safeTxHash.Length != 32 || packed.Length % SignatureSizeInBytes != 0)
        {
            throw new ArgumentException("expected a 32-byte hash and whole 65-byte signatures");
        }

        var owners = new List<byte[]>(packed.Length / SignatureSizeInBytes);
        for (int off = 0; off < packed.Length; off += SignatureSizeInBytes)
        {
            byte v = packed[off + 64];
            if (v is not (27 or 28))
            {
                throw new ArgumentException($"signature {off / SignatureSizeInBytes} is not a plain ECDSA owner signature (v = {v})");
            }

            if (!EcdsaSecp256k1.TryRecover(safeTxHash, packed.Slice(off, 64), v - 27, out Secp256k1Point publicKey))
            {
                throw new ArgumentException($"signature {off / SignatureSizeInBytes} does not recover");
            }

            owners.Add(EthereumAddress.FromPublicKeyBytes(publicKey.ToCompressed()));
        }

        return owners;
    }
}
