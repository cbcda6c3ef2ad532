using System.Globalization;
using System.Numerics;
using System.Text.Json;
using Conclave.Crypto.Hashing;

namespace Conclave.Chains.Ethereum;

/// <summary>One access-list entry (EIP-2930): an address and the storage keys it touches.</summary>
public sealed record AccessListEntry(byte[] Address, IReadOnlyList<byte[]> StorageKeys);

/// <summary>
/// An Ethereum transaction to sign:
/// <list type="bullet">
/// <item>type 0 (legacy): signing payload RLP[nonce, gasPrice, gas, to, value, data] without a chain id, or with
/// EIP-155 replay protection RLP[…, chainId, 0, 0]; signed v = 27 + y or chainId·2 + 35 + y.</item>
/// <item>type 1 (EIP-2930): 0x01 ‖ RLP[chainId, nonce, gasPrice, gas, to, value, data, accessList]; signed appends yParity, r, s.</item>
/// <item>type 2 (EIP-1559): 0x02 ‖ RLP[chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to, value, data, accessList].</item>
/// </list>
/// A legacy transaction with chain id 0 is treated as having none (no EIP-155), as ethers does.
/// The signing hash is Keccak-256 of the payload; <see cref="Serialize"/> writes the raw signed transaction.
/// </summary>
public sealed record EthereumTransaction
{
    public int Type { get; init; }

    public BigInteger? ChainId { get; init; }

    public BigInteger Nonce { get; init; }

    public BigInteger GasPrice { get; init; }

    public BigInteger MaxPriorityFeePerGas { get; init; }

    public BigInteger MaxFeePerGas { get; init; }

    public BigInteger GasLimit { get; init; }

    /// <summary>20 bytes, or null for contract creation.</summary>
    public byte[]? To { get; init; }

    public BigInteger Value { get; init; }

    public byte[] Data { get; init; } = [];

    public IReadOnlyList<AccessListEntry> AccessList { get; init; } = [];

    /// <summary>The bytes whose Keccak-256 is signed.</summary>
    public byte[] SigningPayload()
    {
        Validate();
        return Type switch
        {
            0 => Rlp.EncodeList([.. LegacyFields(), .. ChainId is { IsZero: false } c ? new[] { Rlp.EncodeUInt(c), Rlp.EncodeUInt(0), Rlp.EncodeUInt(0) } : []]),
            1 => [0x01, .. Rlp.EncodeList(Eip2930Fields())],
            _ => [0x02, .. Rlp.EncodeList(Eip1559Fields())],
        };
    }

    public byte[] SigningHash() => Keccak256.HashData(SigningPayload());

    /// <summary>The raw signed transaction from a 64-byte compact signature (r ‖ s) and its recovery id.</summary>
    public byte[] Serialize(ReadOnlySpan<byte> signature64, int recoveryId)
    {
        Validate();
        if (signature64.Length != 64 || recoveryId is not (0 or 1))
        {
            throw ChainErrors.Format(nameof(signature64), "expected 64 bytes and a recovery id of 0 or 1");
        }

        byte[] r = Rlp.EncodeUInt(new BigInteger(signature64[..32], isUnsigned: true, isBigEndian: true));
        byte[] s = Rlp.EncodeUInt(new BigInteger(signature64[32..], isUnsigned: true, isBigEndian: true));
        switch (Type)
        {
            case 0:
                BigInteger v = ChainId is { IsZero: false } c ? (c * 2) + 35 + recoveryId : 27 + recoveryId;
                return Rlp.EncodeList([.. LegacyFields(), Rlp.EncodeUInt(v), r, s]);
            case 1:
                return [0x01, .. Rlp.EncodeList([.. Eip2930Fields(), Rlp.EncodeUInt(recoveryId), r, s])];
            default:
                return [0x02, .. Rlp.EncodeList([.. Eip1559Fields(), Rlp.EncodeUInt(recoveryId), r, s])];
        }
    }

    private void Validate()
    {
        if (Type is < 0 or > 2)
        {
            throw ChainErrors.Format("type", "only transaction types 0, 1 and 2 are supported");
        }

        if (Type != 0 && ChainId is null)
        {
            throw ChainErrors.Format("chainId", "is required for typed transactions");
        }

        if (To is not null && To.Length != 20)
        {
            throw ChainErrors.Format("to", "must be 20 bytes");
        }
    }

    private byte[][] LegacyFields() =>
        [Rlp.EncodeUInt(Nonce), Rlp.EncodeUInt(GasPrice), Rlp.EncodeUInt(GasLimit), Rlp.EncodeBytes(To ?? []), Rlp.EncodeUInt(Value), Rlp.EncodeBytes(Data)];

    private byte[][] Eip2930Fields() =>
        [Rlp.EncodeUInt(ChainId!.Value), Rlp.EncodeUInt(Nonce), Rlp.EncodeUInt(GasPrice), Rlp.EncodeUInt(GasLimit), Rlp.EncodeBytes(To ?? []),
         Rlp.EncodeUInt(Value), Rlp.EncodeBytes(Data), EncodeAccessList()];

    private byte[][] Eip1559Fields() =>
        [Rlp.EncodeUInt(ChainId!.Value), Rlp.EncodeUInt(Nonce), Rlp.EncodeUInt(MaxPriorityFeePerGas), Rlp.EncodeUInt(MaxFeePerGas),
         Rlp.EncodeUInt(GasLimit), Rlp.EncodeBytes(To ?? []), Rlp.EncodeUInt(Value), Rlp.EncodeBytes(Data), EncodeAccessList()];

    private byte[] EncodeAccessList() =>
        Rlp.EncodeList(AccessList.Select(e => Rlp.EncodeList(Rlp.EncodeBytes(e.Address), Rlp.EncodeList(e.StorageKeys.Select(k => Rlp.EncodeBytes(k))))));

    /// <summary>
    /// Reads a transaction object as JSON-RPC (<c>eth_signTransaction</c>) and ethers send it: quantities as 0x hex
    /// strings, decimal strings or numbers; <c>gas</c> or <c>gasLimit</c>; <c>input</c> or <c>data</c>. The type is
    /// taken from <c>type</c>, or inferred (maxFeePerGas → 2, accessList → 1, else 0). <c>from</c> is ignored here.
    /// </summary>
    public static EthereumTransaction FromJson(JsonElement tx)
    {
        if (tx.ValueKind != JsonValueKind.Object)
        {
            throw ChainErrors.Format("transaction", "must be an object");
        }

        bool has1559 = Has(tx, "maxFeePerGas") || Has(tx, "maxPriorityFeePerGas");
        int type = Has(tx, "type") ? (int)Quantity(tx, "type") : has1559 ? 2 : Has(tx, "accessList") ? 1 : 0;
        byte[]? to = null;
        if (tx.TryGetProperty("to", out JsonElement toEl) && toEl.ValueKind == JsonValueKind.String && toEl.GetString()!.Length > 0)
        {
            to = HexBytes(toEl.GetString()!, "to");
            if (to.Length != 20)
            {
                throw ChainErrors.Format("to", "must be 20 bytes");
            }
        }

        byte[] data = tx.TryGetProperty("input", out JsonElement d) || tx.TryGetProperty("data", out d) ? (d.ValueKind == JsonValueKind.Null ? [] : HexBytes(d.GetString() ?? "", "data")) : [];
        var access = new List<AccessListEntry>();
        if (tx.TryGetProperty("accessList", out JsonElement al) && al.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement e in al.EnumerateArray())
            {
                byte[] address = HexBytes(e.GetProperty("address").GetString() ?? "", "accessList.address");
                var keys = e.TryGetProperty("storageKeys", out JsonElement ks) ? ks.EnumerateArray().Select(k => HexBytes(k.GetString() ?? "", "accessList.storageKeys")).ToList() : [];
                if (address.Length != 20 || keys.Any(k => k.Length != 32))
                {
                    throw ChainErrors.Format("accessList", "addresses are 20 bytes and storage keys 32 bytes");
                }

                access.Add(new AccessListEntry(address, keys));
            }
        }

        return new EthereumTransaction
        {
            Type = type,
            ChainId = Has(tx, "chainId") ? Quantity(tx, "chainId") : null,
            Nonce = OptionalQuantity(tx, "nonce"),
            GasPrice = OptionalQuantity(tx, "gasPrice"),
            MaxFeePerGas = OptionalQuantity(tx, "maxFeePerGas"),
            MaxPriorityFeePerGas = OptionalQuantity(tx, "maxPriorityFeePerGas"),
            GasLimit = Has(tx, "gas") ? Quantity(tx, "gas") : OptionalQuantity(tx, "gasLimit"),
            To = to,
            Value = OptionalQuantity(tx, "value"),
            Data = data,
            AccessList = access,
        };
    }

    private static bool Has(JsonElement o, string name) => o.TryGetProperty(name, out JsonElement v) && v.ValueKind != JsonValueKind.Null;

    private static BigInteger OptionalQuantity(JsonElement o, string name) => Has(o, name) ? Quantity(o, name) : BigInteger.Zero;

    private static BigInteger Quantity(JsonElement o, string name)
    {
        JsonElement v = o.GetProperty(name);
        BigInteger q;
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (!BigInteger.TryParse(v.GetRawText(), NumberStyles.None, CultureInfo.InvariantCulture, out q))
            {
                throw ChainErrors.Format(name, "must be a non-negative integer");
            }
        }
        else if (v.ValueKind == JsonValueKind.String)
        {
            string s = v.GetString()!;
            if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            {
                string hex = s[2..];
                // "0x" alone is read as zero (ethers' test cases write zero that way).
                if (hex.Length > 64 || !hex.All(Uri.IsHexDigit))
                {
                    throw ChainErrors.Format(name, "must be a hex quantity");
                }

                q = BigInteger.Parse("0" + hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            }
            else if (s.Length is 0 or > 78 || !BigInteger.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out q))
            {
                throw ChainErrors.Format(name, "must be a quantity");
            }
        }
        else
        {
            throw ChainErrors.Format(name, "must be a quantity");
        }

        if (q.GetByteCount(isUnsigned: true) > 32)
        {
            throw ChainErrors.Format(name, "exceeds 256 bits");
        }

        return q;
    }

    internal static byte[] HexBytes(string s, string name)
    {
        string hex = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? s[2..] : s;
        if (hex.Length % 2 != 0 || !hex.All(Uri.IsHexDigit))
        {
            throw ChainErrors.Format(name, "must be even-length hex");
        }

        return Convert.FromHexString(hex);
    }
}
