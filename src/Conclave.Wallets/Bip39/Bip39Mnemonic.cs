using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Wallets.Internal;

namespace Conclave.Wallets.Bip39;

/// <summary>
/// BIP-39 mnemonic sentences: entropy to words with the SHA-256 checksum ("Generating the mnemonic"), words back to
/// entropy with the checksum verified, and the 64-byte seed ("From mnemonic to seed": PBKDF2-HMAC-SHA512,
/// 2048 iterations, salt "mnemonic" + passphrase, both UTF-8 NFKD).
/// <para>
/// Secrets: entropy and seeds are returned in <see cref="SecretBuffer"/>s the caller disposes. A mnemonic is a
/// .NET <see cref="string"/>, which is immutable and cannot be zeroed; keep such strings as short-lived as possible
/// (read, derive the seed, drop the reference). Internal copies (word indices, UTF-8 bytes) are zeroed.
/// </para>
/// <para>
/// Parsing: words are separated by any whitespace (including U+3000, the Japanese separator) and compared after NFKD
/// normalization, exactly (no prefixes, no case folding). The seed is computed from the canonical sentence: the
/// recognised words joined with one ASCII space, which is the NFKD form of a well-formed mnemonic in every list.
/// </para>
/// </summary>
public static class Bip39Mnemonic
{
    /// <summary>The word counts BIP-39 defines (128 to 256 bits of entropy in steps of 32).</summary>
    public static IReadOnlyList<int> ValidWordCounts { get; } = [12, 15, 18, 21, 24];

    /// <summary>PBKDF2 iteration count fixed by BIP-39.</summary>
    public const int Pbkdf2Iterations = 2048;

    public const int SeedSizeInBytes = 64;

    /// <summary>
    /// A new random mnemonic. Entropy comes from <paramref name="random"/>, by default the SP 800-90B
    /// health-checked system source (<see cref="HealthCheckedRandomSource.System"/>).
    /// </summary>
    public static string Generate(int wordCount = 24, Bip39Wordlist? wordlist = null, IRandomSource? random = null)
    {
        if (!ValidWordCounts.Contains(wordCount))
        {
            throw WalletErrors.WordCount(wordCount);
        }

        random ??= HealthCheckedRandomSource.System;
        Span<byte> entropy = stackalloc byte[wordCount * 4 / 3];
        try
        {
            random.Fill(entropy);
            return FromEntropy(entropy, wordlist);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(entropy);
        }
    }

    /// <summary>The mnemonic for 16, 20, 24, 28 or 32 bytes of entropy (BIP-39 "Generating the mnemonic").</summary>
    public static string FromEntropy(ReadOnlySpan<byte> entropy, Bip39Wordlist? wordlist = null)
    {
        if (entropy.Length is not (16 or 20 or 24 or 28 or 32))
        {
            throw WalletErrors.EntropyLength(entropy.Length);
        }

        wordlist ??= Bip39Wordlist.English;
        int wordCount = entropy.Length * 3 / 4;
        Span<byte> bits = stackalloc byte[entropy.Length + 32];
        Span<int> indices = stackalloc int[24];
        try
        {
            entropy.CopyTo(bits);
            SHA256.HashData(entropy, bits[entropy.Length..]);
            for (int w = 0; w < wordCount; w++)
            {
                indices[w] = ReadElevenBits(bits, w);
            }

            var words = new string[wordCount];
            for (int w = 0; w < wordCount; w++)
            {
                words[w] = wordlist[indices[w]];
            }

            return string.Join(wordlist.Separator, words);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bits);
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(indices));
        }
    }

    /// <summary>
    /// The entropy a mnemonic encodes, with its checksum verified. With no <paramref name="wordlist"/> the language is
    /// recognised: the first official list (English first) that contains every word and whose checksum matches.
    /// </summary>
    public static SecretBuffer ToEntropy(string mnemonic, Bip39Wordlist? wordlist = null)
    {
        SecretBuffer entropy = Parse(mnemonic, wordlist, out _, out int[] indices);
        Clear(indices);
        return entropy;
    }

    /// <summary>True when the mnemonic has a valid word count, known words and a matching checksum.</summary>
    public static bool IsValid(string mnemonic, Bip39Wordlist? wordlist = null)
    {
        try
        {
            using SecretBuffer entropy = ToEntropy(mnemonic, wordlist);
            return true;
        }
        catch (Crypto.CryptoFormatException)
        {
            return false;
        }
    }

    /// <summary>The wordlist a valid mnemonic uses (see <see cref="ToEntropy"/> for how it is recognised).</summary>
    public static Bip39Wordlist DetectWordlist(string mnemonic)
    {
        using SecretBuffer entropy = Parse(mnemonic, null, out Bip39Wordlist list, out int[] indices);
        Clear(indices);
        return list;
    }

    /// <summary>
    /// The 64-byte BIP-39 seed of a valid mnemonic (the checksum is verified first; a mnemonic that fails validation
    /// is refused rather than silently turned into an unrelated wallet).
    /// </summary>
    public static SecretBuffer ToSeed(string mnemonic, string passphrase = "", Bip39Wordlist? wordlist = null)
    {
        ArgumentNullException.ThrowIfNull(passphrase);
        string normalizedPassphrase = UnicodeText.TryNormalizeKd(passphrase) ?? throw WalletErrors.NormalizationUnavailable(nameof(passphrase));
        SecretBuffer entropy = Parse(mnemonic, wordlist, out wordlist, out int[] indices);
        entropy.Dispose();

        byte[]? sentence = null;
        byte[]? salt = null;
        try
        {
            sentence = CanonicalSentenceUtf8(wordlist, indices);
            salt = PinnedUtf8("mnemonic" + normalizedPassphrase);
            SecretBuffer seed = SecretBuffer.Allocate(SeedSizeInBytes);
            Rfc2898DeriveBytes.Pbkdf2(sentence, salt, seed.Span, Pbkdf2Iterations, HashAlgorithmName.SHA512);
            return seed;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(indices.AsSpan()));
            if (sentence is not null)
            {
                CryptographicOperations.ZeroMemory(sentence);
            }

            if (salt is not null)
            {
                CryptographicOperations.ZeroMemory(salt);
            }
        }
    }

    private static byte[] CanonicalSentenceUtf8(Bip39Wordlist wordlist, int[] indices)
    {
        int length = indices.Length - 1;
        foreach (int i in indices)
        {
            length += System.Text.Encoding.UTF8.GetByteCount(wordlist[i]);
        }

        byte[] bytes = GC.AllocateArray<byte>(length, pinned: true);
        int offset = 0;
        for (int w = 0; w < indices.Length; w++)
        {
            if (w > 0)
            {
                bytes[offset++] = (byte)' ';
            }

            offset += System.Text.Encoding.UTF8.GetBytes(wordlist[indices[w]], bytes.AsSpan(offset));
        }

        return bytes;
    }

    private static byte[] PinnedUtf8(string text)
    {
        byte[] bytes = GC.AllocateArray<byte>(System.Text.Encoding.UTF8.GetByteCount(text), pinned: true);
        System.Text.Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }

    private static SecretBuffer Parse(string mnemonic, Bip39Wordlist? requested, out Bip39Wordlist wordlist, out int[] indices)
    {
        ArgumentNullException.ThrowIfNull(mnemonic);
        List<string> raw = SplitWords(mnemonic);
        if (!ValidWordCounts.Contains(raw.Count))
        {
            throw WalletErrors.WordCount(raw.Count);
        }

        var words = new string[raw.Count];
        var unnormalized = new bool[raw.Count];
        for (int w = 0; w < raw.Count; w++)
        {
            string? n = UnicodeText.TryNormalizeKd(raw[w]);
            unnormalized[w] = n is null;
            words[w] = n ?? raw[w];
        }

        indices = GC.AllocateArray<int>(words.Length, pinned: true);
        if (requested is not null)
        {
            int missing = Lookup(requested, words, indices);
            if (missing >= 0)
            {
                Clear(indices);
                throw WalletErrors.UnknownWord(missing + 1, requested.Name, unnormalized[missing]);
            }

            SecretBuffer? entropy = TryEntropy(indices);
            if (entropy is null)
            {
                Clear(indices);
                throw WalletErrors.Checksum();
            }

            wordlist = requested;
            return entropy;
        }

        Bip39Wordlist? best = null;
        int bestMissing = -1;
        bool anyComplete = false;
        foreach (Bip39Wordlist candidate in Bip39Wordlist.All)
        {
            int missing = Lookup(candidate, words, indices);
            if (missing < 0)
            {
                anyComplete = true;
                SecretBuffer? entropy = TryEntropy(indices);
                if (entropy is not null)
                {
                    wordlist = candidate;
                    return entropy;
                }
            }
            else if (missing > bestMissing)
            {
                (best, bestMissing) = (candidate, missing);
            }
        }

        Clear(indices);
        if (anyComplete)
        {
            throw WalletErrors.Checksum();
        }

        if (bestMissing == 0 || best is null)
        {
            throw WalletErrors.NoWordlist(1, unnormalized[0]);
        }

        throw WalletErrors.UnknownWord(bestMissing + 1, best.Name, unnormalized[bestMissing]);
    }

    private static void Clear(int[] indices) => CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(indices.AsSpan()));

    /// <summary>Fills indices; returns the position of the first word not in the list, or -1.</summary>
    private static int Lookup(Bip39Wordlist list, string[] words, int[] indices)
    {
        for (int w = 0; w < words.Length; w++)
        {
            if (!list.TryGetIndexNormalized(words[w], out indices[w]))
            {
                return w;
            }
        }

        return -1;
    }

    private static List<string> SplitWords(string mnemonic)
    {
        var words = new List<string>(24);
        int start = -1;
        for (int i = 0; i <= mnemonic.Length; i++)
        {
            bool space = i == mnemonic.Length || char.IsWhiteSpace(mnemonic[i]);
            if (space && start >= 0)
            {
                words.Add(mnemonic[start..i]);
                start = -1;
            }
            else if (!space && start < 0)
            {
                start = i;
            }
        }

        return words;
    }

    /// <summary>Rebuilds entropy from 11-bit indices; null when the checksum bits do not match.</summary>
    private static SecretBuffer? TryEntropy(int[] indices)
    {
        int totalBits = indices.Length * 11;
        int checksumBits = totalBits / 33;
        int entropyBytes = (totalBits - checksumBits) / 8;
        Span<byte> bits = stackalloc byte[33];
        Span<byte> hash = stackalloc byte[32];
        bits.Clear();
        try
        {
            for (int w = 0; w < indices.Length; w++)
            {
                WriteElevenBits(bits, w, indices[w]);
            }

            SHA256.HashData(bits[..entropyBytes], hash);
            int mask = 0xFF << (8 - checksumBits) & 0xFF;
            int diff = (bits[entropyBytes] ^ hash[0]) & mask;
            if (diff != 0)
            {
                return null;
            }

            return SecretBuffer.CopyFrom(bits[..entropyBytes]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bits);
            CryptographicOperations.ZeroMemory(hash);
        }
    }

    private static int ReadElevenBits(ReadOnlySpan<byte> bits, int word)
    {
        int value = 0;
        for (int b = word * 11; b < (word * 11) + 11; b++)
        {
            value = (value << 1) | ((bits[b >> 3] >> (7 - (b & 7))) & 1);
        }

        return value;
    }

    private static void WriteElevenBits(Span<byte> bits, int word, int value)
    {
        for (int k = 0; k < 11; k++)
        {
            int b = (word * 11) + k;
            int bit = (value >> (10 - k)) & 1;
            bits[b >> 3] |= (byte)(bit << (7 - (b & 7)));
        }
    }
}
