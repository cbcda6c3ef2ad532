using System.Globalization;
using System.Text;

namespace Conclave.Policy.HttpSignatures;

/// <summary>An RFC 8941 bare item: integer, string, token, byte sequence or boolean (decimals are refused here).</summary>
public sealed record SfItem(object Value)
{
    public long? Integer => Value as long?;

    public string? String => Value is SfString s ? s.Text : null;

    public string? Token => Value is SfToken t ? t.Text : null;

    public byte[]? Bytes => Value as byte[];
}

public sealed record SfString(string Text);

public sealed record SfToken(string Text);

/// <summary>A parameterised value: a bare item, or an inner list of items (RFC 8941 section 3.1.1).</summary>
public sealed record SfMember(SfItem? Item, IReadOnlyList<(SfItem Item, IReadOnlyList<KeyValuePair<string, SfItem>> Params)>? InnerList, IReadOnlyList<KeyValuePair<string, SfItem>> Params);

/// <summary>
/// The parts of RFC 8941 Structured Field Values that RFC 9421 and RFC 9530 need: parsing a Dictionary (section 4.2.2)
/// of inner lists or items with parameters, and serialising inner lists, strings and byte sequences (section 4.1).
/// Anything malformed throws <see cref="FormatException"/>, caught by the verifier and reported as malformed.
/// </summary>
public static class StructuredFields
{
    public const int MaxLength = 8192;

    public static IReadOnlyList<KeyValuePair<string, SfMember>> ParseDictionary(string input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Length > MaxLength)
        {
            throw new FormatException("structured field too long");
        }

        var p = new Parser(input);
        var result = new List<KeyValuePair<string, SfMember>>();
        p.SkipSp();
        if (p.End)
        {
            return result;
        }

        while (true)
        {
            string key = p.Key();
            SfMember member;
            if (p.Peek == '=')
            {
                p.Next();
                member = p.Member();
            }
            else
            {
                member = new SfMember(new SfItem(true), null, p.Params());
            }

            int existing = result.FindIndex(kv => kv.Key == key);
            if (existing >= 0)
            {
                result.RemoveAt(existing);
            }

            result.Add(new(key, member));
            p.SkipOws();
            if (p.End)
            {
                return result;
            }

            p.Expect(',');
            p.SkipOws();
            if (p.End)
            {
                throw new FormatException("trailing comma");
            }
        }
    }

    /// <summary>Serialises an RFC 8941 inner list of strings with parameters (section 4.1.1.1).</summary>
    public static string SerializeInnerList(IEnumerable<string> items, IEnumerable<KeyValuePair<string, SfItem>> parameters)
    {
        var sb = new StringBuilder("(");
        sb.Append(string.Join(' ', items.Select(SerializeString)));
        sb.Append(')');
        foreach (var (k, v) in parameters)
        {
            sb.Append(';').Append(k);
            if (v.Value is not true)
            {
                sb.Append('=').Append(SerializeItem(v));
            }
        }

        return sb.ToString();
    }

    public static string SerializeItem(SfItem item) => item.Value switch
    {
        long n => n.ToString(CultureInfo.InvariantCulture),
        SfString s => SerializeString(s.Text),
        SfToken t => t.Text,
        byte[] b => ":" + Convert.ToBase64String(b) + ":",
        bool b => b ? "?1" : "?0",
        _ => throw new FormatException("unsupported item"),
    };

    public static string SerializeString(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s)
        {
            if (c < 0x20 || c > 0x7e)
            {
                throw new FormatException("strings are printable ASCII");
            }

            if (c is '"' or '\\')
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        return sb.Append('"').ToString();
    }

    private sealed class Parser(string s)
    {
        private int _i;

        public bool End => _i >= s.Length;

        public char Peek => End ? '\0' : s[_i];

        public void Next() => _i++;

        public void Expect(char c)
        {
            if (Peek != c)
            {
                throw new FormatException($"expected '{c}'");
            }

            _i++;
        }

        public void SkipSp()
        {
            while (Peek == ' ')
            {
                _i++;
            }
        }

        public void SkipOws()
        {
            while (Peek is ' ' or '\t')
            {
                _i++;
            }
        }

        public string Key()
        {
            int start = _i;
            if (!(Peek is (>= 'a' and <= 'z') or '*'))
            {
                throw new FormatException("a key starts with a lowercase letter or *");
            }

            while (Peek is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '-' or '.' or '*')
            {
                _i++;
            }

            return s[start.._i];
        }

        public SfMember Member()
        {
            if (Peek == '(')
            {
                _i++;
                var items = new List<(SfItem, IReadOnlyList<KeyValuePair<string, SfItem>>)>();
                while (true)
                {
                    SkipSp();
                    if (Peek == ')')
                    {
                        _i++;
                        return new SfMember(null, items, Params());
                    }

                    var item = Item();
                    items.Add((item, Params()));
                    if (Peek is not (' ' or ')'))
                    {
                        throw new FormatException("inner list items are separated by spaces");
                    }
                }
            }

            var bare = Item();
            return new SfMember(bare, null, Params());
        }

        public IReadOnlyList<KeyValuePair<string, SfItem>> Params()
        {
            var list = new List<KeyValuePair<string, SfItem>>();
            while (Peek == ';')
            {
                _i++;
                SkipSp();
                string k = Key();
                SfItem v = new(true);
                if (Peek == '=')
                {
                    _i++;
                    v = Item();
                }

                int existing = list.FindIndex(kv => kv.Key == k);
                if (existing >= 0)
                {
                    list.RemoveAt(existing);
                }

                list.Add(new(k, v));
            }

            return list;
        }

        public SfItem Item()
        {
            char c = Peek;
            if (c == '"')
            {
                _i++;
                var sb = new StringBuilder();
                while (true)
                {
                    if (End)
                    {
                        throw new FormatException("unterminated string");
                    }

                    char x = s[_i++];
                    if (x == '\\')
                    {
                        char e = Peek;
                        if (e is not ('"' or '\\'))
                        {
                            throw new FormatException("bad escape");
                        }

                        sb.Append(e);
                        _i++;
                    }
                    else if (x == '"')
                    {
                        return new SfItem(new SfString(sb.ToString()));
                    }
                    else if (x < 0x20 || x > 0x7e)
                    {
                        throw new FormatException("strings are printable ASCII");
                    }
                    else
                    {
                        sb.Append(x);
                    }
                }
            }

            if (c == ':')
            {
                _i++;
                int end = s.IndexOf(':', _i);
                if (end < 0)
                {
                    throw new FormatException("unterminated byte sequence");
                }

                string b64 = s[_i..end];
                _i = end + 1;
                if (b64.Any(ch => !(char.IsAsciiLetterOrDigit(ch) || ch is '+' or '/' or '=')))
                {
                    throw new FormatException("byte sequences are base64");
                }

                return new SfItem(Convert.FromBase64String(b64));
            }

            if (c == '?')
            {
                _i++;
                char b = Peek;
                _i++;
                return b switch { '1' => new SfItem(true), '0' => new SfItem(false), _ => throw new FormatException("booleans are ?0 or ?1") };
            }

            if (c == '-' || char.IsAsciiDigit(c))
            {
                int start = _i;
                if (c == '-')
                {
                    _i++;
                }

                while (char.IsAsciiDigit(Peek))
                {
                    _i++;
                }

                string digits = s[start.._i];
                if (Peek == '.' || digits.TrimStart('-').Length is 0 or > 15)
                {
                    throw new FormatException("integers only, at most 15 digits");
                }

                return new SfItem(long.Parse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture));
            }

            if (char.IsAsciiLetter(c) || c == '*')
            {
                int start = _i;
                while (!End && (char.IsAsciiLetterOrDigit(Peek) || "!#$%&'*+-.^_`|~:/".Contains(Peek, StringComparison.Ordinal)))
                {
                    _i++;
                }

                return new SfItem(new SfToken(s[start.._i]));
            }

            throw new FormatException("unexpected character");
        }
    }
}
