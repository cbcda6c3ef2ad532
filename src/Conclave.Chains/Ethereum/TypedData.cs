using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using Conclave.Crypto.Hashing;

namespace Conclave.Chains.Ethereum;

/// <summary>
/// EIP-712 typed structured data hashing as <c>eth_signTypedData_v4</c> defines it:
/// hash = Keccak-256(0x19 ‖ 0x01 ‖ hashStruct(EIP712Domain, domain) ‖ hashStruct(primaryType, message)),
/// hashStruct(T, v) = Keccak-256(typeHash(T) ‖ encodeData(T, v)), typeHash = Keccak-256(encodeType(T)) where
/// encodeType lists T then its referenced struct types sorted by name; atomic values are 32-byte words, strings
/// and bytes are hashed, structs are hashStruct, arrays (v4) are Keccak-256 of the concatenated encodings.
/// When the types have no EIP712Domain entry, it is built from the domain fields present, in the order
/// name, version, chainId, verifyingContract, salt (as ethers does).
/// </summary>
public static class TypedData
{
    /// <summary>The digest to sign for a typed-data document (the JSON object with types, primaryType, domain, message).</summary>
    public static byte[] Hash(JsonElement typedData)
    {
        if (typedData.ValueKind != JsonValueKind.Object
            || !typedData.TryGetProperty("types", out JsonElement typesEl) || typesEl.ValueKind != JsonValueKind.Object
            || !typedData.TryGetProperty("primaryType", out JsonElement primary) || primary.ValueKind != JsonValueKind.String
            || !typedData.TryGetProperty("domain", out JsonElement domain) || domain.ValueKind != JsonValueKind.Object
            || !typedData.TryGetProperty("message", out JsonElement message) || message.ValueKind != JsonValueKind.Object)
        {
            throw ChainErrors.Format("typedData", "needs types, primaryType, domain and message");
        }

        Dictionary<string, List<(string Name, string Type)>> types = ReadTypes(typesEl);
        if (!types.ContainsKey("EIP712Domain"))
        {
            var fields = new List<(string, string)>();
            foreach ((string name, string type) in new[] { ("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address"), ("salt", "bytes32") })
            {
                if (domain.TryGetProperty(name, out _))
                {
                    fields.Add((name, type));
                }
            }

            types["EIP712Domain"] = fields;
        }

        byte[] domainSeparator = HashStruct(types, "EIP712Domain", domain, 0);
        string primaryType = primary.GetString()!;
        byte[] messageHash = primaryType == "EIP712Domain" ? [] : HashStruct(types, primaryType, message, 0);
        return Keccak256.HashData([0x19, 0x01, .. domainSeparator, .. messageHash]);
    }

    /// <summary>hashStruct of the domain alone (the domain separator).</summary>
    public static byte[] DomainSeparator(JsonElement typedData)
    {
        Dictionary<string, List<(string Name, string Type)>> types = ReadTypes(typedData.GetProperty("types"));
        return HashStruct(types, "EIP712Domain", typedData.GetProperty("domain"), 0);
    }

    private static Dictionary<string, List<(string Name, string Type)>> ReadTypes(JsonElement typesEl)
    {
        var types = new Dictionary<string, List<(string Name, string Type)>>(StringComparer.Ordinal);
        foreach (JsonProperty t in typesEl.EnumerateObject())
        {
            if (t.Value.ValueKind != JsonValueKind.Array)
            {
                throw ChainErrors.Format("types", "each type must be an array of fields");
            }

            types[t.Name] = [.. t.Value.EnumerateArray().Select(f =>
                f.ValueKind == JsonValueKind.Object && f.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String
                    && f.TryGetProperty("type", out JsonElement ty) && ty.ValueKind == JsonValueKind.String
                    ? (n.GetString()!, ty.GetString()!)
                    : throw ChainErrors.Format("types", "fields need a name and a type"))];
        }

        return types;
    }

    /// <summary>encodeType(T): "T(type1 name1,…)" followed by every referenced struct type, sorted by name.</summary>
    public static string EncodeType(IReadOnlyDictionary<string, List<(string Name, string Type)>> types, string primaryType)
    {
        ArgumentNullException.ThrowIfNull(types);
        var deps = new SortedSet<string>(StringComparer.Ordinal);
        CollectDependencies(types, primaryType, deps);
        deps.Remove(primaryType);
        var sb = new StringBuilder();
        foreach (string t in new[] { primaryType }.Concat(deps))
        {
            sb.Append(t).Append('(').AppendJoin(',', types[t].Select(f => f.Type + " " + f.Name)).Append(')');
        }

        return sb.ToString();
    }

    private static void CollectDependencies(IReadOnlyDictionary<string, List<(string Name, string Type)>> types, string type, SortedSet<string> found)
    {
        string baseType = BaseType(type);
        if (!types.TryGetValue(baseType, out List<(string Name, string Type)>? fields) || !found.Add(baseType))
        {
            return;
        }

        foreach ((_, string t) in fields)
        {
            CollectDependencies(types, t, found);
        }
    }

    private static string BaseType(string type)
    {
        int i = type.IndexOf('[', StringComparison.Ordinal);
        return i < 0 ? type : type[..i];
    }

    private static byte[] HashStruct(Dictionary<string, List<(string Name, string Type)>> types, string type, JsonElement value, int depth)
    {
        if (depth > 32)
        {
            throw ChainErrors.Format("typedData", "nesting too deep");
        }

        if (!types.TryGetValue(type, out List<(string Name, string Type)>? fields))
        {
            throw ChainErrors.Format("types", "unknown struct type");
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw ChainErrors.Format("message", "a struct value must be an object");
        }

        byte[] typeHash = Keccak256.HashData(Encoding.UTF8.GetBytes(EncodeType(types, type)));
        var enc = new List<byte>(32 * (fields.Count + 1));
        enc.AddRange(typeHash);
        foreach ((string name, string fieldType) in fields)
        {
            if (!value.TryGetProperty(name, out JsonElement v))
            {
                throw ChainErrors.Format("message", "a field is missing");
            }

            enc.AddRange(EncodeValue(types, fieldType, v, depth + 1));
        }

        return Keccak256.HashData([.. enc]);
    }

    private static byte[] EncodeValue(Dictionary<string, List<(string Name, string Type)>> types, string type, JsonElement v, int depth)
    {
        if (type.EndsWith(']'))
        {
            int open = type.LastIndexOf('[');
            string inner = type[..open];
            string size = type[(open + 1)..^1];
            if (v.ValueKind != JsonValueKind.Array || (size.Length > 0 && v.GetArrayLength() != int.Parse(size, CultureInfo.InvariantCulture)))
            {
                throw ChainErrors.Format("message", "array value does not match its type");
            }

            var all = new List<byte>();
            foreach (JsonElement item in v.EnumerateArray())
            {
                all.AddRange(EncodeValue(types, inner, item, depth + 1));
            }

            return Keccak256.HashData([.. all]);
        }

        if (types.ContainsKey(type))
        {
            return HashStruct(types, type, v, depth);
        }

        switch (type)
        {
            case "string":
                return Keccak256.HashData(Encoding.UTF8.GetBytes(v.ValueKind == JsonValueKind.String ? v.GetString()! : throw ChainErrors.Format("message", "string expected")));
            case "bytes":
                return Keccak256.HashData(HexString(v));
            case "bool":
                return Word(v.ValueKind switch
                {
                    JsonValueKind.True => BigInteger.One,
                    JsonValueKind.False => BigInteger.Zero,
                    _ => throw ChainErrors.Format("message", "bool expected"),
                });
            case "address":
                byte[] a = HexString(v);
                return a.Length == 20 ? [.. new byte[12], .. a] : throw ChainErrors.Format("message", "address must be 20 bytes");
        }

        if (type.StartsWith("bytes", StringComparison.Ordinal) && int.TryParse(type.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is >= 1 and <= 32)
        {
            byte[] b = HexString(v);
            if (b.Length != n)
            {
                throw ChainErrors.Format("message", "fixed bytes value has the wrong length");
            }

            var word = new byte[32];
            b.CopyTo(word, 0);
            return word;
        }

        bool signed = type.StartsWith("int", StringComparison.Ordinal);
        if ((signed || type.StartsWith("uint", StringComparison.Ordinal))
            && int.TryParse(type.AsSpan(signed ? 3 : 4), NumberStyles.None, CultureInfo.InvariantCulture, out int bits) && bits % 8 == 0 && bits is >= 8 and <= 256)
        {
            BigInteger x = Integer(v);
            BigInteger limit = BigInteger.One << (signed ? bits - 1 : bits);
            if ((signed && (x < -limit || x >= limit)) || (!signed && (x.Sign < 0 || x >= limit)))
            {
                throw ChainErrors.Format("message", "integer out of range for its type");
            }

            return Word(x.Sign < 0 ? (BigInteger.One << 256) + x : x);
        }

        throw ChainErrors.Format("types", "unsupported field type");
    }

    private static byte[] Word(BigInteger x)
    {
        byte[] b = x.ToByteArray(isUnsigned: true, isBigEndian: true);
        var word = new byte[32];
        b.CopyTo(word, 32 - b.Length);
        return word;
    }

    private static byte[] HexString(JsonElement v) =>
        v.ValueKind == JsonValueKind.String ? EthereumTransaction.HexBytes(v.GetString()!, "message") : throw ChainErrors.Format("message", "hex string expected");

    private static BigInteger Integer(JsonElement v)
    {
        string s = v.ValueKind switch
        {
            JsonValueKind.Number => v.GetRawText(),
            JsonValueKind.String => v.GetString()!,
            _ => throw ChainErrors.Format("message", "integer expected"),
        };
        bool negative = s.StartsWith('-');
        string body = negative ? s[1..] : s;
        BigInteger x;
        if (body.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            if (body.Length is < 3 or > 66 || !body[2..].All(Uri.IsHexDigit))
            {
                throw ChainErrors.Format("message", "integer expected");
            }

            x = BigInteger.Parse("0" + body[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }
        else if (body.Length is 0 or > 80 || !BigInteger.TryParse(body, NumberStyles.None, CultureInfo.InvariantCulture, out x))
        {
            throw ChainErrors.Format("message", "integer expected");
        }

        return negative ? -x : x;
    }
}
