using Conclave.Wallets.Codecs;

namespace Conclave.Wallets.Addresses;

/// <summary>
/// Solana account addresses: the Base58 text of the 32-byte Ed25519 public key. Kept here until Conclave.Chains
/// exists; then it moves there.
/// </summary>
public static class SolanaAddress
{
    public static string FromPublicKey(ReadOnlySpan<byte> ed25519PublicKey)
    {
        if (ed25519PublicKey.Length != 32)
        {
            throw WalletErrors.PublicKey("publicKey", $"an Ed25519 public key is 32 bytes, got {ed25519PublicKey.Length}");
        }

        return Base58.Encode(ed25519PublicKey);
    }
}
