using Conclave.Crypto.Hashing;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Chains.Bitcoin;

/// <summary>The Bitcoin network an address is for (its bech32 human-readable part).</summary>
public enum BitcoinNetwork
{
    Mainnet,
    Testnet,
    Regtest,
}

/// <summary>
/// Pay-to-Taproot (BIP-341) key-path outputs and their bech32m addresses (BIP-350).
/// <list type="bullet">
/// <item><see cref="FromOutputKey"/>: the address of a 32-byte x-only output key Q as is.</item>
/// <item><see cref="Bip86OutputKey"/>: BIP-86 — for an internal key P without a script tree,
/// Q = P + int(hash_TapTweak(bytes(P)))·G (BIP-341 "taproot_tweak_pubkey" with an empty merkle root). Used for
/// both <c>schnorr-bip340</c> and <c>frost-taproot</c> keys (whose public key is the internal key P): their
/// key-path signatures are made under Q (<see cref="TaprootPrivateKey"/> for a single key; the FROST library's
/// <c>TaprootTweak</c> on every share for a threshold key).</item>
/// </list>
/// </summary>
public static class TaprootAddress
{
    public static string Hrp(BitcoinNetwork network) => network switch
    {
        BitcoinNetwork.Mainnet => "bc",
        BitcoinNetwork.Testnet => "tb",
        BitcoinNetwork.Regtest => "bcrt",
        _ => throw ChainErrors.Format(nameof(network), "unknown network"),
    };

    /// <summary>The bech32m address of output key Q (witness version 1, 32-byte program).</summary>
    public static string FromOutputKey(ReadOnlySpan<byte> outputKeyXOnly, BitcoinNetwork network = BitcoinNetwork.Mainnet)
    {
        if (outputKeyXOnly.Length != 32 || !Secp256k1Point.TryParseXOnly(outputKeyXOnly, out _))
        {
            throw ChainErrors.Format(nameof(outputKeyXOnly), "must be a 32-byte x-only point on secp256k1");
        }

        return Bech32m.EncodeSegwitAddress(Hrp(network), 1, outputKeyXOnly);
    }

    /// <summary>BIP-341 taproot_tweak_pubkey(P, h = empty): returns x-only Q and whether Q has odd y.</summary>
    public static (byte[] OutputKey, bool OddY) Bip86OutputKey(ReadOnlySpan<byte> internalKeyXOnly) => TweakPublicKey(internalKeyXOnly, []);

    /// <summary>BIP-341 taproot_tweak_pubkey(P, h): t = hash_TapTweak(P ‖ h), Q = lift_x(P) + t·G.</summary>
    public static (byte[] OutputKey, bool OddY) TweakPublicKey(ReadOnlySpan<byte> internalKeyXOnly, ReadOnlySpan<byte> merkleRoot)
    {
        if (internalKeyXOnly.Length != 32)
        {
            throw ChainErrors.Format(nameof(internalKeyXOnly), "must be 32 bytes");
        }

        Secp256k1Point p = Secp256k1Point.ParseXOnly(internalKeyXOnly, nameof(internalKeyXOnly));
        byte[] data = [.. internalKeyXOnly, .. merkleRoot];
        if (!Secp256k1Scalar.TryFromBytes(TaggedHash.HashData("TapTweak", data), out Secp256k1Scalar t))
        {
            throw ChainErrors.Format(nameof(internalKeyXOnly), "tweak out of range");
        }

        Secp256k1Point q = p + Secp256k1Point.MultiplyGenerator(t);
        if (q.IsIdentity)
        {
            throw ChainErrors.Format(nameof(internalKeyXOnly), "tweaked key is the identity");
        }

        return (q.ToXOnly(), !q.HasEvenY);
    }
}
