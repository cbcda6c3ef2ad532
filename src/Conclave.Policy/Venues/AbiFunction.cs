using System.Text;
using Conclave.Crypto.Hashing;

namespace Conclave.Policy.Venues;

public enum AbiKind
{
    Address,
    Bool,
    Uint,
    Int,
    FixedBytes,
}

/// <summary>A static Solidity ABI type: address, bool, uintN, intN (N = 8..256 in steps of 8) or bytesN (N = 1..32).</summary>
public sealed record AbiType(AbiKind Kind, int Bits)
{
    public string Canonical => Kind switch
    {
        AbiKind.Address => "address",
        AbiKind.Bool => "bool",
        AbiKind.Uint => $"uint{Bits}",
        AbiKind.Int => $"int{Bits}",
        _ => $"bytes{Bits / 8}",
    };

    public static AbiType? TryParse(string s)
    {
        switch (s)
        {
            case "address": return new(AbiKind.Address, 160);
            case "bool": return new(AbiKind.Bool, 8);
            case "uint": return new(AbiKind.Uint, 256);
            case "int": return new(AbiKind.Int, 256);
        }

        if (s.StartsWith("uint", StringComparison.Ordinal) && TryBits(s[4..], out int u))
        {
            return new(AbiKind.Uint, u);
        }

        if (s.StartsWith("int", StringComparison.Ordinal) && TryBits(s[3..], out int i))
        {
            return new(AbiKind.Int, i);
        }

        if (s.StartsWith("bytes", StringComparison.Ordinal) && int.TryParse(s.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n)
            && n is >= 1 and <= 32 && s[5] != '0')
        {
            return new(AbiKind.FixedBytes, n * 8);
        }

        return null;
    }

    private static bool TryBits(string digits, out int bits) =>
        int.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out bits)
        && digits.Length > 0 && digits[0] != '0' && bits is >= 8 and <= 256 && bits % 8 == 0;
}

public sealed record AbiParameter(string Name, AbiType Type);

/// <summary>
/// A function ABI fragment in human-readable form, <c>name(type name, ...)</c>, static types only. The selector is the
/// first four bytes of Keccak-256 of the canonical signature <c>name(type,...)</c> (Solidity ABI specification,
/// "Function Selector").
/// </summary>
public sealed record AbiFunction
{
    private AbiFunction(string name, IReadOnlyList<AbiParameter> parameters)
    {
        Name = name;
        Parameters = parameters;
        Signature = $"{name}({string.Join(",", parameters.Select(p => p.Type.Canonical))})";
        byte[] h = Keccak256.HashData(Encoding.ASCII.GetBytes(Signature));
        Selector = "0x" + Convert.ToHexStringLower(h.AsSpan(0, 4));
        SelectorBytes = h[..4];
    }

    public string Name { get; }

    public IReadOnlyList<AbiParameter> Parameters { get; }

    public string Signature { get; }

    /// <summary>Lowercase 0x-prefixed 4-byte selector.</summary>
    public string Selector { get; }

    internal byte[] SelectorBytes { get; }

    public static AbiFunction Parse(string fragment, string path)
    {
        ArgumentNullException.ThrowIfNull(fragment);
        string s = fragment.Trim();
        if (s.StartsWith("function ", StringComparison.Ordinal))
        {
            s = s["function ".Length..].Trim();
        }

        int open = s.IndexOf('(', StringComparison.Ordinal);
        if (open <= 0 || !s.EndsWith(')') || !IsIdentifier(s[..open]))
        {
            throw PolicyErrors.Invalid(path, "a function fragment name(type name, ...)");
        }

        string inner = s[(open + 1)..^1].Trim();
        var parameters = new List<AbiParameter>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (inner.Length > 0)
        {
            foreach (string part in inner.Split(','))
            {
                string[] tokens = part.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (tokens.Length != 2 || !IsIdentifier(tokens[1]))
                {
                    throw PolicyErrors.Invalid(path, "every parameter as 'type name' (names are needed to map arguments)");
                }

                var type = AbiType.TryParse(tokens[0]) ?? throw PolicyErrors.Unsupported(path, $"ABI type (static types only: address, bool, uintN, intN, bytesN)");
                if (!names.Add(tokens[1]))
                {
                    throw PolicyErrors.Invalid(path, "parameter names used once");
                }

                parameters.Add(new AbiParameter(tokens[1], type));
            }
        }

        return new AbiFunction(s[..open], parameters);
    }

    private static bool IsIdentifier(string s) =>
        s.Length is > 0 and <= 64 && (char.IsAsciiLetter(s[0]) || s[0] == '_') && s.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}
