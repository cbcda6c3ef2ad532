using System.Text.Json.Nodes;
using Conclave.Crypto.Memory;
using Conclave.Chains.Ethereum;
using Conclave.Chains.Solana;
using Conclave.Wallets.Bip39;
using Conclave.Wallets.Hd;

namespace Conclave.Wallets.Tests;

/// <summary>
/// Conclave.Wallets against independent implementations (tests/interop/checks/wallets.mjs): @scure/bip39 for
/// validation, entropy and seeds, @scure/bip32 for secp256k1 derivation and xprv/xpub, ethers v6 for the EIP-55
/// address, and a SLIP-10 ed25519 derivation on @noble for ed25519 keys and the Solana address. 100 random cases:
/// mnemonics in every official language and length, passphrases with non-ASCII text, random mixed paths.
/// </summary>
public sealed class InteropTests
{
    private const int Cases = 100;

    private static readonly string[] s_passphraseAlphabet = ["a", "Z", "9", " ", "é", "e\u0301", "ß", "Å", "ﬁ", "①", "パ", "ｶ", "한", "中", "😀", "\u3000"];

    [Fact]
    public void AgreesWithScureAndNoble()
    {
        var rng = TestSeed.For("cases");
        int[] counts = [12, 15, 18, 21, 24];
        var cases = new List<object>();
        var expected = new List<Expected>();
        for (int n = 0; n < Cases; n++)
        {
            string language = Bip39Wordlist.LanguageNames[n % Bip39Wordlist.LanguageNames.Count];
            Bip39Wordlist list = Bip39Wordlist.Get(language);
            string mnemonic = Bip39Mnemonic.Generate(counts[Next(rng, counts.Length)], list, rng);
            string passphrase = n % 4 == 0 ? string.Empty : string.Concat(Enumerable.Range(0, Next(rng, 12)).Select(_ => s_passphraseAlphabet[Next(rng, s_passphraseAlphabet.Length)]));
            string path = RandomPath(rng, hardenedOnly: false);
            string edPath = RandomPath(rng, hardenedOnly: true);
            cases.Add(new { language, mnemonic, passphrase, path, edPath });

            using SecretBuffer entropy = Bip39Mnemonic.ToEntropy(mnemonic, list);
            using SecretBuffer seed = Bip39Mnemonic.ToSeed(mnemonic, passphrase, list);
            using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(seed.Span);
            using ExtendedPrivateKey node = master.Derive(path);
            using SecretBuffer sk = node.ExportPrivateKey();
            using ExtendedPrivateKey edMaster = ExtendedPrivateKey.FromSeed(seed.Span, HdCurve.Ed25519);
            using ExtendedPrivateKey ed = edMaster.Derive(edPath);
            using SecretBuffer edSk = ed.ExportPrivateKey();
            expected.Add(new Expected(
                Hex.Encode(entropy.Span), Hex.Encode(seed.Span), node.ToExtendedKeyString(), node.ToExtendedPublicKey().ToExtendedKeyString(),
                Hex.Encode(sk.Span), Hex.Encode(node.PublicKey), Hex.Encode(node.GetChainCode()), EthereumAddress.FromPublicKey(node.PublicKey),
                Hex.Encode(edSk.Span), Hex.Encode(ed.PublicKey), Hex.Encode(ed.GetChainCode()), SolanaAddress.FromPublicKey(ed.PublicKey)));
        }

        JsonArray results = NodeInterop.Run("wallets", cases);
        Assert.Equal(Cases, results.Count);
        for (int i = 0; i < Cases; i++)
        {
            JsonNode r = results[i]!;
            Expected e = expected[i];
            Assert.True(r["valid"]!.GetValue<bool>(), $"case {i}: @scure/bip39 rejects the mnemonic");
            Assert.Equal(e.Entropy, S(r, "entropy"));
            Assert.Equal(e.Seed, S(r, "seed"));
            Assert.Equal(e.Xprv, S(r, "xprv"));
            Assert.Equal(e.Xpub, S(r, "xpub"));
            Assert.Equal(e.PrivateKey, S(r, "privateKey"));
            Assert.Equal(e.PublicKey, S(r, "publicKey"));
            Assert.Equal(e.ChainCode, S(r, "chainCode"));
            Assert.Equal(e.Ethereum, S(r, "ethereum"));
            Assert.Equal(e.EdPrivateKey, S(r["ed"]!, "privateKey"));
            Assert.Equal(e.EdPublicKey, S(r["ed"]!, "publicKey"));
            Assert.Equal(e.EdChainCode, S(r["ed"]!, "chainCode"));
            Assert.Equal(e.Solana, S(r["ed"]!, "solana"));
        }
    }

    private static string S(JsonNode node, string name) => node[name]!.GetValue<string>();

    private static int Next(DeterministicRandomSource rng, int bound)
    {
        Span<byte> b = stackalloc byte[4];
        rng.Fill(b);
        return (int)(BitConverter.ToUInt32(b) % (uint)bound);
    }

    private static string RandomPath(DeterministicRandomSource rng, bool hardenedOnly)
    {
        int depth = Next(rng, 6);
        var parts = new List<string> { "m" };
        Span<byte> b = stackalloc byte[4];
        for (int d = 0; d < depth; d++)
        {
            rng.Fill(b);
            uint value = BitConverter.ToUInt32(b) & 0x7FFF_FFFF;
            if (Next(rng, 3) == 0)
            {
                value %= 100; // small indices as well as large ones
            }

            bool hardened = hardenedOnly || Next(rng, 2) == 0;
            parts.Add(value + (hardened ? "'" : string.Empty));
        }

        return string.Join('/', parts);
    }

    private sealed record Expected(
        string Entropy, string Seed, string Xprv, string Xpub, string PrivateKey, string PublicKey, string ChainCode, string Ethereum,
        string EdPrivateKey, string EdPublicKey, string EdChainCode, string Solana);
}
