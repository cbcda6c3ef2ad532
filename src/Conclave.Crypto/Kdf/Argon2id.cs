using System.Text;
using Conclave.Crypto.Interop;
using Conclave.Crypto.Memory;

namespace Conclave.Crypto.Kdf;

/// <summary>Argon2id cost parameters; kept beside whatever they protect so it can be opened later.</summary>
public readonly record struct Argon2idParameters(int Iterations, int MemoryKiB)
{
    /// <summary>libsodium's "moderate" profile: 3 passes over 256 MiB.</summary>
    public static Argon2idParameters Moderate => new(3, 256 * 1024);

    /// <summary>RFC 9106 section 4 second recommended option: t = 3, m = 64 MiB.</summary>
    public static Argon2idParameters Interactive => new(3, 64 * 1024);

    /// <summary>Cheap parameters for tests only.</summary>
    public static Argon2idParameters ForTests => new(1, 8 * 1024);
}

/// <summary>Argon2id (RFC 9106) through libsodium crypto_pwhash.</summary>
public static class Argon2id
{
    public const int SaltSizeInBytes = 16;

    /// <summary>Derives <paramref name="outputLength"/> secret bytes from a passphrase.</summary>
    public static unsafe SecretBuffer DeriveKey(ReadOnlySpan<char> passphrase, ReadOnlySpan<byte> salt, Argon2idParameters parameters, int outputLength = 32)
    {
        if (salt.Length != SaltSizeInBytes)
        {
            throw CryptoErrors.InvalidLength("salt", salt.Length, SaltSizeInBytes);
        }

        if (parameters.Iterations < 1 || parameters.MemoryKiB < 8)
        {
            throw new CryptoFormatException("parameters", "Argon2id parameters are out of range");
        }

        Sodium.EnsureInitialized();
        int maxBytes = Encoding.UTF8.GetMaxByteCount(passphrase.Length);
        using SecretBuffer pw = SecretBuffer.Allocate(Math.Max(1, maxBytes));
        int pwLen = Encoding.UTF8.GetBytes(passphrase, pw.Span);
        var output = SecretBuffer.Allocate(outputLength);
        fixed (byte* o = output.Span)
        fixed (byte* p = pw.Span)
        fixed (byte* s = salt)
        {
            if (Sodium.crypto_pwhash(o, (ulong)outputLength, p, (ulong)pwLen, s, (ulong)parameters.Iterations,
                    (nuint)parameters.MemoryKiB * 1024, Sodium.crypto_pwhash_ALG_ARGON2ID13) != 0)
            {
                output.Dispose();
                throw new CryptoOperationException("Argon2id failed (out of memory?)");
            }
        }

        return output;
    }
}
