using System.Collections.Concurrent;
using System.Collections.Frozen;
using Conclave.Wallets.Internal;

namespace Conclave.Wallets.Bip39;

/// <summary>The official BIP-39 wordlists (bitcoin/bips bip-0039/*.txt).</summary>
public enum Bip39Language
{
    English,
    ChineseSimplified,
    ChineseTraditional,
    Czech,
    French,
    Italian,
    Japanese,
    Korean,
    Portuguese,
    Spanish,
}

/// <summary>
/// A BIP-39 wordlist ("Wordlist"): 2048 distinct words in NFKD form, and the separator used when printing a
/// mnemonic (U+3000 IDEOGRAPHIC SPACE for Japanese, as the BIP requires; an ASCII space otherwise).
/// The official lists are embedded in the assembly and loaded once, on first use.
/// </summary>
public sealed class Bip39Wordlist
{
    /// <summary>Words in every BIP-39 wordlist.</summary>
    public const int WordCount = 2048;

    private static readonly ConcurrentDictionary<Bip39Language, Bip39Wordlist> s_official = new();

    private static readonly FrozenDictionary<string, Bip39Language> s_byName = new Dictionary<string, Bip39Language>(StringComparer.OrdinalIgnoreCase)
    {
        ["english"] = Bip39Language.English,
        ["chinese_simplified"] = Bip39Language.ChineseSimplified,
        ["chinese_traditional"] = Bip39Language.ChineseTraditional,
        ["czech"] = Bip39Language.Czech,
        ["french"] = Bip39Language.French,
        ["italian"] = Bip39Language.Italian,
        ["japanese"] = Bip39Language.Japanese,
        ["korean"] = Bip39Language.Korean,
        ["portuguese"] = Bip39Language.Portuguese,
        ["spanish"] = Bip39Language.Spanish,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    private readonly string[] _words;
    private readonly FrozenDictionary<string, int> _index;

    private Bip39Wordlist(string name, string[] words, string separator)
    {
        Name = name;
        Separator = separator;
        _words = words;
        _index = words.Select((w, i) => (w, i)).ToFrozenDictionary(p => p.w, p => p.i, StringComparer.Ordinal);
    }

    /// <summary>The list's name, e.g. <c>english</c> or <c>chinese_simplified</c> (the file names of bitcoin/bips).</summary>
    public string Name { get; }

    /// <summary>The separator between words of a printed mnemonic.</summary>
    public string Separator { get; }

    /// <summary>The names accepted by <see cref="TryGet(string, out Bip39Wordlist?)"/>, in a fixed order.</summary>
    public static IReadOnlyList<string> LanguageNames { get; } =
        ["english", "chinese_simplified", "chinese_traditional", "czech", "french", "italian", "japanese", "korean", "portuguese", "spanish"];

    /// <summary>Every official list, English first (the order used to recognise a mnemonic's language).</summary>
    public static IEnumerable<Bip39Wordlist> All => Enum.GetValues<Bip39Language>().Select(Get);

    public static Bip39Wordlist English => Get(Bip39Language.English);

    public static Bip39Wordlist Get(Bip39Language language) => s_official.GetOrAdd(language, Load);

    /// <summary>Looks a list up by name (<c>english</c>, <c>japanese</c>, <c>chinese_simplified</c>, ...; case-insensitive, '-' or '_').</summary>
    public static bool TryGet(string name, out Bip39Wordlist? wordlist)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (s_byName.TryGetValue(name.Replace('-', '_'), out Bip39Language language))
        {
            wordlist = Get(language);
            return true;
        }

        wordlist = null;
        return false;
    }

    /// <summary>Like <see cref="TryGet(string, out Bip39Wordlist?)"/> but throws a format error naming the accepted languages.</summary>
    public static Bip39Wordlist Get(string name)
        => TryGet(name, out Bip39Wordlist? list) ? list! : throw WalletErrors.UnknownLanguage();

    /// <summary>
    /// A custom list (for example a non-BIP-39 language some wallets use): exactly 2048 distinct, non-empty words
    /// without whitespace. Words are NFKD-normalized.
    /// </summary>
    public static Bip39Wordlist Create(string name, IReadOnlyList<string> words, string separator = " ")
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(words);
        ArgumentNullException.ThrowIfNull(separator);
        if (words.Count != WordCount)
        {
            throw WalletErrors.Wordlist($"it must have {WordCount} words, got {words.Count}");
        }

        string[] normalized = new string[WordCount];
        for (int i = 0; i < WordCount; i++)
        {
            string w = words[i] ?? throw WalletErrors.Wordlist($"word {i + 1} is null");
            if (w.Length == 0 || w.Any(char.IsWhiteSpace))
            {
                throw WalletErrors.Wordlist($"word {i + 1} is empty or contains whitespace");
            }

            normalized[i] = UnicodeText.TryNormalizeKd(w) ?? throw WalletErrors.NormalizationUnavailable("words");
        }

        if (normalized.Distinct(StringComparer.Ordinal).Count() != WordCount)
        {
            throw WalletErrors.Wordlist("words are not distinct");
        }

        return new Bip39Wordlist(name, normalized, separator);
    }

    private static Bip39Wordlist Load(Bip39Language language)
    {
        string name = LanguageNames[(int)language];
        using Stream stream = typeof(Bip39Wordlist).Assembly.GetManifestResourceStream($"Conclave.Wallets.Wordlists.{name}.txt")
            ?? throw new InvalidOperationException($"embedded wordlist {name} is missing from Conclave.Wallets");
        using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
        string[] words = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length != WordCount)
        {
            throw new InvalidOperationException($"embedded wordlist {name} has {words.Length} words");
        }

        // The official files are NFKD already (checked by the tests), so no normalization is needed to load them.
        return new Bip39Wordlist(name, words, language == Bip39Language.Japanese ? "\u3000" : " ");
    }

    /// <summary>The word with the given 11-bit index.</summary>
    public string this[int index] => _words[index];

    /// <summary>Finds a word, after NFKD normalization; exact match only (no prefix or fuzzy matching).</summary>
    public bool TryGetIndex(string word, out int index)
    {
        ArgumentNullException.ThrowIfNull(word);
        return _index.TryGetValue(UnicodeText.NormalizeKdOrSame(word), out index);
    }

    internal bool TryGetIndexNormalized(string nfkdWord, out int index) => _index.TryGetValue(nfkdWord, out index);

    public override string ToString() => $"Bip39Wordlist({Name})";
}
