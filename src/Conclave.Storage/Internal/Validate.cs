using System.Text.Json;

namespace Conclave.Storage.Internal;

/// <summary>Input checks shared by the sub-stores (messages name parameters, never values).</summary>
internal static class Validate
{
    public const int MaxTextLength = 256;

    public static void Identifier(string? value, string parameter)
    {
        Text(value, parameter);
    }

    public static void Text(string? value, string parameter)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw StorageErrors.Invalid(parameter, "must not be empty");
        }

        if (value.Length > MaxTextLength)
        {
            throw StorageErrors.Invalid(parameter, $"longer than {MaxTextLength} characters");
        }

        foreach (char ch in value)
        {
            if (char.IsControl(ch))
            {
                throw StorageErrors.Invalid(parameter, "contains a control character");
            }
        }
    }

    public static void OptionalText(string? value, string parameter)
    {
        if (value is not null)
        {
            Text(value, parameter);
        }
    }

    public static void PublicKey(byte[]? value, string parameter)
    {
        if (value is null || value.Length is 0 or > 8192)
        {
            throw StorageErrors.Invalid(parameter, "a public key is 1 to 8192 bytes");
        }
    }

    public static void Hash32(byte[]? value, string parameter)
    {
        if (value is null || value.Length != 32)
        {
            throw StorageErrors.Invalid(parameter, "must be a 32-byte hash");
        }
    }

    public static string Labels(IReadOnlyDictionary<string, string>? labels)
    {
        var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (labels is not null)
        {
            if (labels.Count > 64)
            {
                throw StorageErrors.Invalid("labels", "at most 64 labels");
            }

            foreach (var (k, v) in labels)
            {
                Text(k, "labels key");
                if (v is null || v.Length > MaxTextLength)
                {
                    throw StorageErrors.Invalid("labels value", $"must be at most {MaxTextLength} characters");
                }

                sorted[k] = v;
            }
        }

        return JsonSerializer.Serialize(sorted);
    }
}
