using System.Numerics;
using Conclave.Crypto.Hashing;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Chains.Ethereum;

/// <summary>
/// A signed Ethereum transaction decoded from its raw bytes, with the sender recovered from the signature.
/// <list type="bullet">
/// <item>Envelopes (EIP-2718): a first byte ≥ 0xc0 is a legacy transaction RLP[nonce, gasPrice, gas, to, value,
/// data, v, r, s] with v = 27/28 (no chain id) or chainId·2 + 35/36 (EIP-155); 0x01 ‖ RLP[chainId, nonce, gasPrice,
/// gas, to, value, data, accessList, yParity, r, s] (EIP-2930); 0x02 ‖ RLP[chainId, nonce, maxPriorityFeePerGas,
/// maxFeePerGas, gas, to, value, data, accessList, yParity, r, s] (EIP-1559). Any other first byte is refused.</item>
/// <item>RLP is strict (Yellow Paper appendix B, <see cref="Rlp.Decode"/>): canonical lengths, single bytes below
/// 0x80 not wrapped, nothing after the item; integers are canonical (no leading zero byte, at most 32 bytes); field
/// counts are exact; <c>to</c> is 20 bytes or empty (contract creation); access-list addresses are 20 bytes and
/// storage keys 32.</item>
/// <item>Legacy v = 35/36 (EIP-155 with chain id 0) is refused: no network uses chain id 0, and Conclave reads a
/// chain id of 0 as "none" when it builds transactions.</item>
/// <item>Signature: 1 ≤ r, s &lt; n and s ≤ n/2 (EIP-2, which every post-Homestead transaction obeys); yParity 0 or 1;
/// the public key must be recoverable (ecrecover). The sender is the address of that key.</item>
/// </list>
/// Consensus rules that depend on the chain's state or fork (fee cap against base fee, tip above fee cap, intrinsic
/// gas, nonce) are not a format question and are not checked here. Re-encoding (<see cref="Serialize"/>) gives back
/// the input bytes exactly.
/// </summary>
public sealed class SignedEthereumTransaction
{
    private static readonly BigInteger N = BigInteger.Parse("0FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
    private static readonly BigInteger HalfN = N / 2;

    private readonly byte[] _signature;
    private readonly byte[] _hash;
    private readonly byte[] _sender;

    private SignedEthereumTransaction(EthereumTransaction transaction, byte[] signature, int recoveryId, byte[] hash, byte[] sender)
    {
        Transaction = transaction;
        _signature = signature;
        RecoveryId = recoveryId;
        _hash = hash;
        _sender = sender;
    }

    /// <summary>The unsigned transaction (its <see cref="EthereumTransaction.SigningHash"/> is the digest that was signed).</summary>
    public EthereumTransaction Transaction { get; }

    /// <summary>r ‖ s, 32 bytes each.</summary>
    public ReadOnlySpan<byte> Signature => _signature;

    /// <summary>The y parity of R (legacy: from v).</summary>
    public int RecoveryId { get; }

    /// <summary>The transaction hash: Keccak-256 of the raw bytes.</summary>
    public ReadOnlySpan<byte> Hash => _hash;

    /// <summary>The sender's 20-byte address, recovered from the signature.</summary>
    public ReadOnlySpan<byte> Sender => _sender;

    /// <summary>The sender as an EIP-55 checksummed address.</summary>
    public string SenderAddress => EthereumAddress.ToChecksum(_sender);

    /// <summary>The raw signed transaction again (equal to what was decoded).</summary>
    public byte[] Serialize() => Transaction.Serialize(_signature, RecoveryId);

    /// <summary>Decodes and checks a raw signed transaction; throws <see cref="Conclave.Crypto.CryptoFormatException"/> naming the field at fault.</summary>
    public static SignedEthereumTransaction Decode(ReadOnlySpan<byte> raw)
    {
        if (raw.IsEmpty)
        {
            throw ChainErrors.Format("transaction", "empty");
        }

        EthereumTransaction tx;
        int recoveryId;
        IReadOnlyList<RlpItem> f;
        if (raw[0] >= 0xc0)
        {
            f = Fields(raw, 9, "legacy transaction");
            BigInteger v = f[6].AsUInt("v");
            BigInteger? chainId;
            if (v == 27 || v == 28)
            {
                chainId = null;
                recoveryId = (int)(v - 27);
            }
            else if (v >= 37)
            {
                chainId = (v - 35) / 2;
                recoveryId = (int)((v - 35) % 2);
            }
            else if (v == 35 || v == 36)
            {
                // EIP-155 with chain id 0: no network uses it, and Conclave never signs for it (a chain id of 0 means
                // "none" when Conclave builds a transaction), so it is refused rather than given a second meaning.
                throw ChainErrors.Format("v", "EIP-155 with chain id 0 is not accepted");
            }
            else
            {
                throw ChainErrors.Format("v", "must be 27, 28 or chainId·2 + 35/36 (EIP-155)");
            }

            tx = new EthereumTransaction
            {
                Type = 0,
                ChainId = chainId,
                Nonce = f[0].AsUInt("nonce"),
                GasPrice = f[1].AsUInt("gasPrice"),
                GasLimit = f[2].AsUInt("gas"),
                To = To(f[3]),
                Value = f[4].AsUInt("value"),
                Data = f[5].AsBytes("data"),
            };
        }
        else if (raw[0] == 0x01)
        {
            f = Fields(raw[1..], 11, "EIP-2930 transaction");
            recoveryId = YParity(f[8]);
            tx = new EthereumTransaction
            {
                Type = 1,
                ChainId = f[0].AsUInt("chainId"),
                Nonce = f[1].AsUInt("nonce"),
                GasPrice = f[2].AsUInt("gasPrice"),
                GasLimit = f[3].AsUInt("gas"),
                To = To(f[4]),
                Value = f[5].AsUInt("value"),
                Data = f[6].AsBytes("data"),
                AccessList = AccessList(f[7]),
            };
        }
        else if (raw[0] == 0x02)
        {
            f = Fields(raw[1..], 12, "EIP-1559 transaction");
            recoveryId = YParity(f[9]);
            tx = new EthereumTransaction
            {
                Type = 2,
                ChainId = f[0].AsUInt("chainId"),
                Nonce = f[1].AsUInt("nonce"),
                MaxPriorityFeePerGas = f[2].AsUInt("maxPriorityFeePerGas"),
                MaxFeePerGas = f[3].AsUInt("maxFeePerGas"),
                GasLimit = f[4].AsUInt("gas"),
                To = To(f[5]),
                Value = f[6].AsUInt("value"),
                Data = f[7].AsBytes("data"),
                AccessList = AccessList(f[8]),
            };
        }
        else
        {
            throw ChainErrors.Format("type", "unknown transaction type (supported: legacy, 0x01 EIP-2930, 0x02 EIP-1559)");
        }

        byte[] signature = new byte[64];
        Scalar(f[^2], "r", signature.AsSpan(0, 32));
        BigInteger s = Scalar(f[^1], "s", signature.AsSpan(32, 32));
        if (s > HalfN)
        {
            throw ChainErrors.Format("s", "is in the upper half of the curve order (EIP-2 requires low s)");
        }

        byte[] digest = tx.SigningHash();
        if (!EcdsaSecp256k1.TryRecover(digest, signature, recoveryId, out Secp256k1Point publicKey) || publicKey.IsIdentity)
        {
            throw ChainErrors.Format("signature", "no public key can be recovered from it");
        }

        return new SignedEthereumTransaction(tx, signature, recoveryId, Keccak256.HashData(raw), EthereumAddress.FromPublicKeyBytes(publicKey.ToUncompressed()));
    }

    private static IReadOnlyList<RlpItem> Fields(ReadOnlySpan<byte> rlp, int count, string what)
    {
        IReadOnlyList<RlpItem> f = Rlp.Decode(rlp).AsList("transaction");
        return f.Count == count ? f : throw ChainErrors.Format("transaction", $"a signed {what} has {count} fields, not {f.Count}");
    }

    private static byte[]? To(RlpItem item)
    {
        byte[] to = item.AsBytes("to");
        return to.Length switch
        {
            0 => null,
            20 => to,
            _ => throw ChainErrors.Format("to", "must be 20 bytes, or empty for contract creation"),
        };
    }

    private static int YParity(RlpItem item)
    {
        BigInteger y = item.AsUInt("yParity");
        return y <= 1 ? (int)y : throw ChainErrors.Format("yParity", "must be 0 or 1");
    }

    private static BigInteger Scalar(RlpItem item, string name, Span<byte> into)
    {
        BigInteger v = item.AsUInt(name);
        if (v.IsZero || v >= N)
        {
            throw ChainErrors.Format(name, "must be between 1 and the curve order");
        }

        v.TryWriteBytes(into[(32 - v.GetByteCount(isUnsigned: true))..], out _, isUnsigned: true, isBigEndian: true);
        return v;
    }

    private static List<AccessListEntry> AccessList(RlpItem item)
    {
        var entries = new List<AccessListEntry>();
        foreach (RlpItem e in item.AsList("accessList"))
        {
            IReadOnlyList<RlpItem> pair = e.AsList("accessList");
            if (pair.Count != 2)
            {
                throw ChainErrors.Format("accessList", "each entry is [address, storageKeys]");
            }

            byte[] address = pair[0].AsBytes("accessList.address");
            List<byte[]> keys = [.. pair[1].AsList("accessList.storageKeys").Select(k => k.AsBytes("accessList.storageKeys"))];
            if (address.Length != 20 || keys.Any(k => k.Length != 32))
            {
                throw ChainErrors.Format("accessList", "addresses are 20 bytes and storage keys 32 bytes");
            }

            entries.Add(new AccessListEntry(address, keys));
        }

        return entries;
    }
}
