using System.Text.Json;
using Conclave.Chains.Ethereum;
using Conclave.Crypto;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Chains.Tests;

/// <summary>Decoding signed transactions: the official ethereum/tests TransactionTests, ethers' generated cases, and malformed input.</summary>
public sealed class SignedTransactionTests
{
    private static byte[] H(string hex) => Convert.FromHexString(hex.StartsWith("0x", StringComparison.Ordinal) ? hex[2..] : hex);

    private static readonly string[] Forks = ["London", "Merge", "Shanghai"];

    [Theory]
    [InlineData("GasLimitPriceProductOverflowtMinusOne", 3, 0)]
    [InlineData("maxPriorityFeePerGas00prefix", 1, 1)]
    public void EthereumTests_TransactionTests(string file, int expectedChecks, int expectedRefusals)
    {
        // Exact counts: one check per (test, post-London fork with a result); refusals are the checks with an exception.
        int refusals = 0;
        using JsonDocument d = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector($"ethereum/ethereum-tests/TransactionTests/ttEIP1559/{file}.json")));
        int checkedTests = 0;
        foreach (JsonProperty test in d.RootElement.EnumerateObject())
        {
            byte[] raw = H(test.Value.GetProperty("txbytes").GetString()!);
            JsonElement result = test.Value.GetProperty("result");
            foreach (string fork in Forks.Where(f => result.TryGetProperty(f, out _)))
            {
                JsonElement r = result.GetProperty(fork);
                if (r.TryGetProperty("exception", out JsonElement ex))
                {
                    Assert.Throws<CryptoFormatException>(() => SignedEthereumTransaction.Decode(raw));
                    refusals++;
                }
                else
                {
                    SignedEthereumTransaction tx = SignedEthereumTransaction.Decode(raw);
                    Assert.Equal(r.GetProperty("hash").GetString(), "0x" + Convert.ToHexStringLower(tx.Hash));
                    Assert.Equal(r.GetProperty("sender").GetString(), "0x" + Convert.ToHexStringLower(tx.Sender));
                    Assert.Equal(raw, tx.Serialize());
                }

                checkedTests++;
            }
        }

        Assert.Equal(expectedChecks, checkedTests);
        Assert.Equal(expectedRefusals, refusals);
    }

    [Fact]
    public void EthersTestcases_EverySignedFormDecodes_RecoversTheKeysAddress_AndRoundTrips()
    {
        using JsonDocument d = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector("ethereum/ethers-testcases/transaction.json")));
        int n = 0;
        int refused = 0;
        foreach (JsonElement c in d.RootElement.EnumerateArray())
        {
            byte[] expected = EthereumAddressOf(H(c.GetProperty("privateKey").GetString()!));
            foreach ((string form, int type) in new[] { ("signedLegacy", 0), ("signedEip155", 0), ("signedBerlin", 1), ("signedLondon", 2) })
            {
                if (!c.TryGetProperty(form, out JsonElement signed) || signed.ValueKind != JsonValueKind.String)
                {
                    continue;
                }

                byte[] raw = H(signed.GetString()!);
                if (form == "signedEip155" && (!c.GetProperty("transaction").TryGetProperty("chainId", out JsonElement id) || id.GetString() is "0x" or "0x0"))
                {
                    // ethers also writes EIP-155 with chain id 0 (v = 35/36); Conclave refuses it (see the decoder's notes).
                    Assert.Contains("chain id 0", Assert.Throws<CryptoFormatException>(() => SignedEthereumTransaction.Decode(raw)).Message, StringComparison.Ordinal);
                    refused++;
                    continue;
                }

                SignedEthereumTransaction tx = SignedEthereumTransaction.Decode(raw);
                Assert.Equal(type, tx.Transaction.Type);
                Assert.Equal(expected, tx.Sender.ToArray());
                Assert.Equal(raw, tx.Serialize());
                Assert.Equal(form == "signedLegacy", tx.Transaction.ChainId is null);
                n++;
            }
        }

        Assert.True(n >= 200, $"only {n} signed transactions decoded");
        Assert.True(refused < n / 4, $"{refused} refused");
    }

    private static byte[] EthereumAddressOf(byte[] privateKey)
    {
        Secp256k1Scalar k = Secp256k1Scalar.TryFromBytes(privateKey, out Secp256k1Scalar s) ? s : throw new InvalidOperationException("bad key");
        return EthereumAddress.FromPublicKeyBytes(Secp256k1Point.MultiplyGenerator(k).ToUncompressed());
    }

    public static TheoryData<string, string> Malformed => new()
    {
        // A valid EIP-1559 transaction (ethereum/tests GasLimitPriceProductOverflowtMinusOne) changed in one place each.
        { "trailing byte", Valid + "00" },
        { "truncated", Valid[..^2] },
        { "unknown type", "03" + Valid[2..] },
        { "non-canonical length", "02f90085" + Valid[6..] },
        { "yParity 2", Valid.Replace("c080a05cbd", "c002a05cbd", StringComparison.Ordinal) },
        { "empty", "" },
    };

    private const string Valid = "02f885018084773594009f02ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff82520894095e7baea6a6c7c4c2dfeb977efac326af552d878080c080a05cbd172231fc0735e0fb994dd5b1a4939170a260b36f0427a8a80866b063b948a07c230f7f578dd61785c93361b9871c0706ebfa6d06e3f4491dc9558c5202ed36";

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_IsRefusedWithATypedError(string what, string hex)
    {
        CryptoFormatException e = Assert.Throws<CryptoFormatException>(() => SignedEthereumTransaction.Decode(Convert.FromHexString(hex)));
        Assert.False(string.IsNullOrEmpty(e.Message), what);
    }

    [Fact]
    public void HighS_AndOutOfRangeScalars_AreRefused()
    {
        SignedEthereumTransaction ok = SignedEthereumTransaction.Decode(Convert.FromHexString(Valid));
        byte[] sig = ok.Signature.ToArray();
        System.Numerics.BigInteger n = System.Numerics.BigInteger.Parse("0FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        System.Numerics.BigInteger s = new(sig.AsSpan(32), isUnsigned: true, isBigEndian: true);
        byte[] highS = (n - s).ToByteArray(isUnsigned: true, isBigEndian: true);
        byte[] flipped = [.. sig[..32], .. new byte[32 - highS.Length], .. highS];

        // The same transaction with s replaced by n − s (and the parity flipped): a valid ECDSA signature, but high s.
        byte[] malleated = ok.Transaction.Serialize(flipped, 1 - ok.RecoveryId);
        CryptoFormatException e = Assert.Throws<CryptoFormatException>(() => SignedEthereumTransaction.Decode(malleated));
        Assert.Contains("low s", e.Message, StringComparison.Ordinal);

        byte[] zeroR = ok.Transaction.Serialize([.. new byte[32], .. sig[32..]], ok.RecoveryId);
        Assert.Contains("r:", Assert.Throws<CryptoFormatException>(() => SignedEthereumTransaction.Decode(zeroR)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LegacyWithBadV_AndWrongFieldCount_AreRefused()
    {
        // RLP[nonce, gasPrice, gas, to, value, data, v=29, r=1, s=1]
        byte[] badV = Rlp.EncodeList(Rlp.EncodeUInt(0), Rlp.EncodeUInt(1), Rlp.EncodeUInt(21000), Rlp.EncodeBytes(new byte[20]), Rlp.EncodeUInt(0), Rlp.EncodeBytes([]),
            Rlp.EncodeUInt(29), Rlp.EncodeUInt(1), Rlp.EncodeUInt(1));
        Assert.Contains("v:", Assert.Throws<CryptoFormatException>(() => SignedEthereumTransaction.Decode(badV)).Message, StringComparison.Ordinal);
        byte[] eight = Rlp.EncodeList(Rlp.EncodeUInt(0), Rlp.EncodeUInt(1), Rlp.EncodeUInt(21000), Rlp.EncodeBytes(new byte[20]), Rlp.EncodeUInt(0), Rlp.EncodeBytes([]),
            Rlp.EncodeUInt(27), Rlp.EncodeUInt(1));
        Assert.Contains("9 fields", Assert.Throws<CryptoFormatException>(() => SignedEthereumTransaction.Decode(eight)).Message, StringComparison.Ordinal);
        byte[] badTo = Rlp.EncodeList(Rlp.EncodeUInt(0), Rlp.EncodeUInt(1), Rlp.EncodeUInt(21000), Rlp.EncodeBytes(new byte[19]), Rlp.EncodeUInt(0), Rlp.EncodeBytes([]),
            Rlp.EncodeUInt(27), Rlp.EncodeUInt(1), Rlp.EncodeUInt(1));
        Assert.Contains("to:", Assert.Throws<CryptoFormatException>(() => SignedEthereumTransaction.Decode(badTo)).Message, StringComparison.Ordinal);
    }
}
