using Conclave.Wallets.Codecs;

namespace Conclave.Chains.Solana;

/// <summary>A Solana account address: the base58 encoding of the 32-byte Ed25519 public key.</summary>
public static class SolanaAddress
{
    public static string FromPublicKey(ReadOnlySpan<byte> ed25519PublicKey)
    {
        if (ed25519PublicKey.Length != 32)
        {
            throw ChainErrors.Format("ed25519PublicKey", "must be 32 bytes");
        }

        return Base58.Encode(ed25519PublicKey);
    }
}
