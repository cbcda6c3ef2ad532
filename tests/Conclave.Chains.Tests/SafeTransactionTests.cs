using System.Numerics;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Chains.Ethereum.Safe;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;
using Conclave.Testing;

namespace Conclave.Chains.Tests;

/// <summary>
/// Safe 1.4.1 transaction hashes and packed owner signatures, checked against ethers v6 (its EIP-712 encoder computes
/// the hash independently, and recoverAddress names the owners in the order the packed signatures give them).
/// </summary>
public sealed class SafeTransactionTests
{
    private static string Hex(ReadOnlySpan<byte> b) => "0x" + Convert.ToHexStringLower(b);

    [Fact]
    public void HashesAndPackedSignatures_MatchEthers()
    {
        DeterministicRandomSource rng = TestSeed.For("safe");
        var cases = new List<object>();
        var expected = new List<(string Hash, string[] Owners)>();
        for (int i = 0; i < 24; i++)
        {
            byte[] Bytes(int n)
            {
                byte[] b = new byte[n];
                rng.Fill(b);
                return b;
            }

            BigInteger Amount()
            {
                // Small, large and the uint256 maximum all occur.
                byte[] b = Bytes(1 + (Bytes(1)[0] % 32));
                return i == 3 ? (BigInteger.One << 256) - 1 : new BigInteger(b, isUnsigned: true, isBigEndian: true);
            }

            byte[] safe = Bytes(20);
            BigInteger chainId = i % 3 == 0 ? 1 : new BigInteger(Bytes(4), isUnsigned: true, isBigEndian: true);
            var tx = new SafeTransaction(Bytes(20), Amount(), Bytes(i * 7 % 90), (SafeOperation)(i % 2), Amount(), Amount(), Amount(), i % 4 == 0 ? new byte[20] : Bytes(20), Bytes(20), Amount());
            byte[] hash = tx.Hash(chainId, safe);

            int owners = 1 + (i % 3);
            var sigs = new List<(byte[], int)>();
            var ownerAddresses = new List<byte[]>();
            for (int o = 0; o < owners; o++)
            {
                using SoftwareSigningKey key = SignatureSchemes.EcdsaSecp256k1.GenerateKey(random: TestSeed.For($"owner-{i}-{o}"));
                SignatureResult r = key.Sign(hash);
                sigs.Add((r.Signature, r.RecoveryId!.Value));
                ownerAddresses.Add(EthereumAddress.FromPublicKeyBytes(key.PublicKey.Span));
            }

            byte[] packed = SafeSignatures.Pack(hash, sigs);
            Assert.Equal(owners * 65, packed.Length);
            string[] sortedOwners = [.. ownerAddresses.OrderBy(a => Convert.ToHexStringLower(a), StringComparer.Ordinal).Select(a => Hex(a))];
            Assert.Equal(sortedOwners, SafeSignatures.RecoverOwners(hash, packed).Select(a => Hex(a)).ToArray());

            cases.Add(new
            {
                chainId = chainId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                safe = Hex(safe),
                tx = new
                {
                    to = Hex(tx.To),
                    value = tx.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    data = Hex(tx.Data),
                    operation = (int)tx.Operation,
                    safeTxGas = tx.SafeTxGas.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    baseGas = tx.BaseGas.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    gasPrice = tx.GasPrice.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    gasToken = Hex(tx.GasToken),
                    refundReceiver = Hex(tx.RefundReceiver),
                    nonce = tx.Nonce.ToString(System.Globalization.CultureInfo.InvariantCulture),
                },
                packed = Hex(packed),
            });
            expected.Add((Hex(hash), sortedOwners));
        }

        JsonArray results = NodeInterop.Run("safe", cases);
        Assert.Equal(expected.Count, results.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Hash, results[i]!["hash"]!.GetValue<string>());
            Assert.Equal(expected[i].Owners, results[i]!["owners"]!.AsArray().Select(o => o!.GetValue<string>()).ToArray());
        }
    }

    [Fact]
    public void BadInputs_AreRefusedWithTheirReason()
    {
        byte[] a = new byte[20];
        Assert.Contains("20-byte", Assert.Throws<ArgumentException>(() => SafeTransaction.Call(new byte[19], 0, [], 0)).Message, StringComparison.Ordinal);
        Assert.Contains("2^256", Assert.Throws<ArgumentException>(() => SafeTransaction.Call(a, -1, [], 0)).Message, StringComparison.Ordinal);
        Assert.Contains("2^256", Assert.Throws<ArgumentException>(() => SafeTransaction.Call(a, 0, [], BigInteger.One << 256)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new SafeTransaction(a, 0, [], (SafeOperation)2, 0, 0, 0, a, a, 0));

        byte[] hash = SafeTransaction.Call(a, 1, [], 0).Hash(1, a);
        using SoftwareSigningKey key = SignatureSchemes.EcdsaSecp256k1.GenerateKey(random: TestSeed.For("owner"));
        SignatureResult r = key.Sign(hash);
        // Positive control first: one signature packs.
        Assert.Equal(65, SafeSignatures.Pack(hash, [(r.Signature, r.RecoveryId!.Value)]).Length);
        Assert.Contains("same owner", Assert.Throws<ArgumentException>(() => SafeSignatures.Pack(hash, [(r.Signature, r.RecoveryId!.Value), (r.Signature, r.RecoveryId!.Value)])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => SafeSignatures.Pack(hash, [(r.Signature[..63], 0)]));
        Assert.Throws<ArgumentException>(() => SafeSignatures.Pack(hash[..31], [(r.Signature, r.RecoveryId!.Value)]));
        byte[] packed = SafeSignatures.Pack(hash, [(r.Signature, r.RecoveryId!.Value)]);
        packed[64] = 31; // an eth_sign-style v is not a plain owner signature
        Assert.Throws<ArgumentException>(() => SafeSignatures.RecoverOwners(hash, packed));
    }
}
