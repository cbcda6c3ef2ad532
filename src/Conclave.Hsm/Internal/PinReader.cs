using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Memory;

namespace Conclave.Hsm.Internal;

/// <summary>
/// Reads the user PIN from the source named by <see cref="HsmOptions"/> into a <see cref="SecretBuffer"/>.
/// A PIN never comes from a command-line argument or from the options themselves, and is never logged.
/// </summary>
internal static class PinReader
{
    /// <summary>PKCS#11 PINs are short; a larger file is a configuration mistake (a key file, a certificate).</summary>
    internal const int MaxPinBytes = 256;

    internal static SecretBuffer Read(HsmOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.PinFile))
        {
            return ReadFile(options.PinFile, options.ModulePath, options.TokenLabel);
        }

        if (!string.IsNullOrWhiteSpace(options.PinEnvironmentVariable))
        {
            return ReadEnvironment(options.PinEnvironmentVariable);
        }

        throw HsmErrors.InvalidConfiguration("no PIN source configured");
    }

    internal static SecretBuffer ReadFile(string path, string? modulePath = null, string? tokenLabel = null)
    {
        if (!File.Exists(path))
        {
            throw HsmErrors.PinUnavailable($"PIN file not found: {path}");
        }

        if (!OperatingSystem.IsWindows())
        {
            UnixFileMode mode = File.GetUnixFileMode(path);
            // Owner-only: any group or other permission bit means someone besides the owner may read or replace the PIN.
            const UnixFileMode notOwner = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            if ((mode & notOwner) != 0)
            {
                string where = tokenLabel is null ? string.Empty : $" for token '{tokenLabel}' in {modulePath}";
                throw HsmErrors.PinUnavailable($"PIN file {path}{where} is accessible by users other than its owner (mode {ModeString(mode)}); restrict it with chmod 600");
            }
        }

        byte[] raw;
        try
        {
            var info = new FileInfo(path);
            if (info.Length > MaxPinBytes + 2)
            {
                throw HsmErrors.PinUnavailable($"PIN file {path} is larger than {MaxPinBytes} bytes; it does not look like a PIN");
            }

            raw = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new HsmException(HsmErrorKind.PinUnavailable, $"HSM PIN: PIN file {path} could not be read ({e.GetType().Name})", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new HsmException(HsmErrorKind.PinUnavailable, $"HSM PIN: permission denied reading PIN file {path}", e);
        }

        try
        {
            int length = raw.Length;
            while (length > 0 && (raw[length - 1] == (byte)'\n' || raw[length - 1] == (byte)'\r'))
            {
                length--;
            }

            if (length == 0)
            {
                throw HsmErrors.PinUnavailable($"PIN file {path} is empty");
            }

            return SecretBuffer.CopyFrom(raw.AsSpan(0, length));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    internal static SecretBuffer ReadEnvironment(string variable)
    {
        // The runtime hands environment variables out as strings, which cannot be zeroed; the bytes we keep can.
        string? value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrEmpty(value))
        {
            throw HsmErrors.PinUnavailable($"environment variable {variable} is not set or empty");
        }

        int count = Encoding.UTF8.GetByteCount(value);
        if (count > MaxPinBytes)
        {
            throw HsmErrors.PinUnavailable($"environment variable {variable} holds more than {MaxPinBytes} bytes; it does not look like a PIN");
        }

        var pin = SecretBuffer.Allocate(count);
        _ = Encoding.UTF8.GetBytes(value, pin.Span);
        return pin;
    }

    private static string ModeString(UnixFileMode mode) => Convert.ToString((int)mode & 0x1FF, 8).PadLeft(4, '0');
}
