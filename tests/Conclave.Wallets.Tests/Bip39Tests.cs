using System.Text;
using System.Text.Json;
using Conclave.Crypto;
using Conclave.Crypto.Memory;
using Conclave.Wallets.Bip39;
using Conclave.Wallets.Hd;
using Conclave.Wallets.Internal;

namespace Conclave.Wallets.Tests;

/// <summary>
/// BIP-39 against trezor/python-mnemonic's vectors.json: every vector of every language in the file (the ten
/// official lists plus Russian and Turkish, whose lists come from the same repository and are loaded with
/// <see cref="Bip39Wordlist.Create"/>). Each vector: entropy → mnemonic, mnemonic → entropy, seed with passphrase
/// "TREZOR", and the BIP-32 master xprv of that seed.
/// </summary>
public sealed class Bip39Tests
{
    private static readonly Lazy<Dictionary<string, string[][]>> s_vectors = new(() =>
        JsonSerializer.Deserialize<Dictionary<string, string[][]>>(File.ReadAllText(RepoPaths.Vector("bip39/vectors.json")))!);

    public static TheoryData<string> Languages()
    {
        var data = new TheoryData<string>();
        foreach (string language in s_vectors.Value.Keys)
        {
            data.Add(language);
        }

        return data;
    }

    private static Bip39Wordlist ListFor(string language)
    {
        if (Bip39Wordlist.TryGet(language, out Bip39Wordlist? official))
        {
            return official!;
        }

        string[] words = File.ReadAllLines(RepoPaths.Vector($"bip39/wordlists-unofficial/{language}.txt"), Encoding.UTF8);
        return Bip39Wordlist.Create(language, words);
    }

    private static string Nfkd(string s) => s.Normalize(NormalizationForm.FormKD);

    [Fact]
    public void FileHasEveryOfficialLanguageAndMore()
    {
        Assert.Equal(12, s_vectors.Value.Count);
        foreach (string name in Bip39Wordlist.LanguageNames)
        {
            Assert.True(s_vectors.Value.ContainsKey(name), name);
        }
    }

    [Theory]
    [MemberData(nameof(Languages))]
    public void VectorsOfEveryLanguage(string language)
    {
        Bip39Wordlist list = ListFor(language);
        string[][] vectors = s_vectors.Value[language];
        Assert.Equal(24, vectors.Length);
        foreach (string[] v in vectors)
        {
            byte[] entropy = Hex.Decode(v[0]);
            string mnemonic = v[1];

            string produced = Bip39Mnemonic.FromEntropy(entropy, list);
            Assert.Equal(Nfkd(mnemonic), Nfkd(produced));

            using (SecretBuffer back = Bip39Mnemonic.ToEntropy(mnemonic, list))
            {
                Assert.Equal(v[0], Hex.Encode(back.Span));
            }

            using SecretBuffer seed = Bip39Mnemonic.ToSeed(mnemonic, "TREZOR", list);
            Assert.Equal(v[2], Hex.Encode(seed.Span));

            using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(seed.Span);
            Assert.Equal(v[3], master.ToExtendedKeyString());
        }
    }

    public static TheoryData<string> OfficialLanguages()
    {
        var data = new TheoryData<string>();
        foreach (string language in s_vectors.Value.Keys.Where(l => Bip39Wordlist.TryGet(l, out _)))
        {
            data.Add(language);
        }

        return data;
    }

    [Fact]
    public void RussianAndTurkish_AreNotRecognisedWithoutTheirList()
    {
        // They are not official lists and are not shipped: naming no list must refuse their mnemonics, not guess.
        string[] unofficial = [.. s_vectors.Value.Keys.Where(l => !Bip39Wordlist.TryGet(l, out _))];
        Assert.Equal(["russian", "turkish"], unofficial.Order().ToArray());
        Assert.Equal(10, ((IEnumerable<object[]>)OfficialLanguages()).Count());
        int refused = 0;
        foreach (string language in unofficial)
        {
            foreach (string[] v in s_vectors.Value[language])
            {
                Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.DetectWordlist(v[1]));
                Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.ToSeed(v[1], "TREZOR"));
                refused++;
            }
        }

        Assert.Equal(48, refused);
    }

    [Theory]
    [MemberData(nameof(OfficialLanguages))]
    public void LanguageIsRecognisedWithoutBeingNamed(string language)
    {
        foreach (string[] v in s_vectors.Value[language])
        {
            using SecretBuffer seed = Bip39Mnemonic.ToSeed(v[1], "TREZOR");
            Assert.Equal(v[2], Hex.Encode(seed.Span));

            // Chinese simplified and traditional share many characters; either list may claim a shared mnemonic,
            // but the entropy must then still be right in the list that claimed it.
            Bip39Wordlist detected = Bip39Mnemonic.DetectWordlist(v[1]);
            using SecretBuffer entropy = Bip39Mnemonic.ToEntropy(v[1], detected);
            if (!language.StartsWith("chinese", StringComparison.Ordinal))
            {
                Assert.Equal(language, detected.Name);
                Assert.Equal(v[0], Hex.Encode(entropy.Span));
            }
        }
    }

    [Fact]
    public void JapaneseUsesTheIdeographicSpaceAndAcceptsAnyNormalForm()
    {
        Bip39Wordlist ja = Bip39Wordlist.Get(Bip39Language.Japanese);
        string[] v = s_vectors.Value["japanese"][5];
        string produced = Bip39Mnemonic.FromEntropy(Hex.Decode(v[0]), ja);
        Assert.Contains('\u3000', produced);
        Assert.DoesNotContain(' ', produced);

        foreach (NormalizationForm form in new[] { NormalizationForm.FormC, NormalizationForm.FormD, NormalizationForm.FormKC, NormalizationForm.FormKD })
        {
            string input = v[1].Normalize(form);
            using SecretBuffer seed = Bip39Mnemonic.ToSeed(input, "TREZOR");
            Assert.Equal(v[2], Hex.Encode(seed.Span));
        }

        // Japanese words separated by ASCII spaces give the same seed (NFKD maps U+3000 to U+0020).
        using SecretBuffer spaced = Bip39Mnemonic.ToSeed(v[1].Replace('\u3000', ' '), "TREZOR");
        Assert.Equal(v[2], Hex.Encode(spaced.Span));
    }

    [Fact]
    public void EmbeddedWordlistsEqualTheOfficialFilesAndAreNfkd()
    {
        foreach (string name in Bip39Wordlist.LanguageNames)
        {
            string[] file = File.ReadAllLines(RepoPaths.Vector($"bip39/wordlists/{name}.txt"), Encoding.UTF8);
            Bip39Wordlist list = Bip39Wordlist.Get(name);
            Assert.Equal(Bip39Wordlist.WordCount, file.Length);
            for (int i = 0; i < file.Length; i++)
            {
                Assert.Equal(file[i], list[i]);
                Assert.Equal(Nfkd(file[i]), list[i]);
                Assert.True(list.TryGetIndex(file[i].Normalize(NormalizationForm.FormC), out int index));
                Assert.Equal(i, index);
            }
        }
    }

    [Fact]
    public void SeedPassphraseIsNormalized()
    {
        string m = s_vectors.Value["english"][0][1];
        using SecretBuffer composed = Bip39Mnemonic.ToSeed(m, "pass\u00E9");
        using SecretBuffer decomposed = Bip39Mnemonic.ToSeed(m, "passe\u0301");
        using SecretBuffer other = Bip39Mnemonic.ToSeed(m, "passe");
        Assert.Equal(Hex.Encode(composed.Span), Hex.Encode(decomposed.Span));
        Assert.NotEqual(Hex.Encode(composed.Span), Hex.Encode(other.Span));
    }

    [Fact]
    public void ExtraWhitespaceIsIgnored()
    {
        string[] v = s_vectors.Value["english"][3];
        using SecretBuffer seed = Bip39Mnemonic.ToSeed("  " + v[1].Replace(" ", " \t\n ", StringComparison.Ordinal) + "\n", "TREZOR");
        Assert.Equal(v[2], Hex.Encode(seed.Span));
    }

    [Theory]
    [InlineData(12)]
    [InlineData(15)]
    [InlineData(18)]
    [InlineData(21)]
    [InlineData(24)]
    public void GenerateMakesValidMnemonicsOfEveryLength(int words)
    {
        var rng = TestSeed.For($"{words} words");
        foreach (string language in Bip39Wordlist.LanguageNames)
        {
            Bip39Wordlist list = Bip39Wordlist.Get(language);
            string m = Bip39Mnemonic.Generate(words, list, rng);
            Assert.Equal(words, m.Split(list.Separator).Length);
            Assert.True(Bip39Mnemonic.IsValid(m, list));
        }
    }

    [Fact]
    public void GenerateDrawsItsEntropyFromTheSource()
    {
        string[] v = s_vectors.Value["english"][2];
        byte[] entropy = Hex.Decode(v[0]);
        string m = Bip39Mnemonic.Generate(entropy.Length * 3 / 4, random: new FixedRandomSource(entropy));
        Assert.Equal(v[1], m);

        // Default source: the health-checked system source; two draws differ.
        Assert.NotEqual(Bip39Mnemonic.Generate(), Bip39Mnemonic.Generate());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(11)]
    [InlineData(13)]
    [InlineData(25)]
    public void WrongWordCountIsNamed(int count)
    {
        string m = string.Join(' ', Enumerable.Repeat("abandon", count));
        var e = Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.ToSeed(m));
        Assert.Equal($"mnemonic must have 12, 15, 18, 21 or 24 words, got {count}", e.Message);
        Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.Generate(count));
    }

    [Fact]
    public void WrongChecksumIsRefused()
    {
        string m = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon";
        var e = Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.ToSeed(m));
        Assert.Contains("checksum", e.Message, StringComparison.Ordinal);
        Assert.False(Bip39Mnemonic.IsValid(m));
        Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.ToEntropy(m, Bip39Wordlist.English));
    }

    [Fact]
    public void UnknownWordIsNamedByPositionNotValue()
    {
        string m = "abandon abandon abandon abandon abandon zzzsecretzzz abandon abandon abandon abandon abandon about";
        var e = Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.ToSeed(m));
        Assert.Equal("mnemonic word 6 is not in the english wordlist", e.Message);
        Assert.DoesNotContain("zzzsecretzzz", e.Message, StringComparison.Ordinal);

        var first = Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.ToSeed("zzz " + string.Join(' ', Enumerable.Repeat("abandon", 11))));
        Assert.Equal("mnemonic word 1 is not in any BIP-39 wordlist", first.Message);

        var named = Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.ToEntropy(m.Replace("zzzsecretzzz", "abandon", StringComparison.Ordinal), Bip39Wordlist.Get(Bip39Language.French)));
        Assert.Equal("mnemonic word 12 is not in the french wordlist", named.Message); // French has "abandon", not "about"
    }

    [Fact]
    public void EntropyLengthIsChecked()
    {
        var e = Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.FromEntropy(new byte[17]));
        Assert.Equal("entropy must be 16, 20, 24, 28 or 32 bytes, got 17", e.Message);
    }

    [Fact]
    public void CustomWordlistsAreValidated()
    {
        Assert.Throws<CryptoFormatException>(() => Bip39Wordlist.Create("x", new string[2047]));
        string[] dup = Enumerable.Range(0, 2048).Select(i => "w" + i).ToArray();
        dup[5] = "w4";
        Assert.Throws<CryptoFormatException>(() => Bip39Wordlist.Create("x", dup));
        Assert.Throws<CryptoFormatException>(() => Bip39Wordlist.Get("klingon"));
    }

    /// <summary>
    /// Without ICU (InvariantGlobalization) string.Normalize is a silent no-op. The library then refuses non-ASCII
    /// input it cannot normalize instead of deriving a wrong seed, and still accepts input already in NFKD form.
    /// </summary>
    [Fact]
    public void WithoutNormalizationNonAsciiInputFailsClosed()
    {
        string[] es = s_vectors.Value["spanish"][0];
        string nfc = es[1].Normalize(NormalizationForm.FormC);
        Assert.NotEqual(Nfkd(nfc), nfc);
        UnicodeText.SimulateUnavailable = true;
        try
        {
            Assert.False(UnicodeText.NormalizationAvailable);
            var e = Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.ToSeed(nfc, "TREZOR"));
            Assert.Contains("InvariantGlobalization", e.Message, StringComparison.Ordinal);

            using (SecretBuffer seed = Bip39Mnemonic.ToSeed(Nfkd(es[1]), "TREZOR"))
            {
                Assert.Equal(es[2], Hex.Encode(seed.Span));
            }

            string en = s_vectors.Value["english"][0][1];
            using (SecretBuffer ascii = Bip39Mnemonic.ToSeed(en, "ascii passphrase"))
            {
                Assert.Equal(64, ascii.Length);
            }

            var p = Assert.Throws<CryptoFormatException>(() => Bip39Mnemonic.ToSeed(en, "pass\u00E9"));
            Assert.Equal("passphrase", p.ParameterName);
        }
        finally
        {
            UnicodeText.SimulateUnavailable = false;
        }
    }
}
