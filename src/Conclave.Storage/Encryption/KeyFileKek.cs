using System.Security.Cryptography;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Storage.Internal;

namespace Conclave.Storage.Encryption;

/// <summary>
/// A KEK read from a file of exactly 32 random bytes (created with mode 0600). Its id is derived from a
/// domain-separated SHA-256 of the key, so a different file is recognised before anything is unwrapped.
/// </summary>
public sealed class KeyFileKek : IKeyEncryptionKey
{
    public const string KindName = "key-file";
    public const int KeySizeInBytes = 32;

    private readonly SecretBuffer _key;

    private KeyFileKek(SecretBuffer key)
    {
        _key = key;
        Span<byte> id = stackalloc byte[32];
        using (var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            h.AppendData("conclave/key-file-kek/id/v1"u8);
            h.AppendData(key.ReadOnlySpan);
            h.GetHashAndReset(id);
        }

        Id = "file-" + Convert.ToHexStringLower(id[..8]);
    }

    public string Id { get; }

    public string Kind => KindName;

    public ReadOnlyMemory<byte> Descriptor => Array.Empty<byte>();

    /// <summary>Creates a new key file (fails if it exists), owner read/write only.</summary>
    public static KeyFileKek CreateFile(string path, IRandomSource? random = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var key = SecretBuffer.Allocate(KeySizeInBytes);
        (random ?? HealthCheckedRandomSource.System).Fill(key.Span);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var fs = new FileStream(path, options))
        {
            fs.Write(key.ReadOnlySpan);
            fs.Flush(flushToDisk: true);
        }

        return new KeyFileKek(SecretBuffer.CopyFrom(key.ReadOnlySpan, SecretMemoryKind.Guarded));
    }

    /// <summary>Loads a key file; it must hold exactly 32 bytes.</summary>
    public static KeyFileKek Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (fs.Length != KeySizeInBytes)
        {
            throw StorageErrors.Invalid("keyFile", $"a key file holds exactly {KeySizeInBytes} bytes");
        }

        var key = SecretBuffer.Allocate(KeySizeInBytes, SecretMemoryKind.Guarded);
        try
        {
            fs.ReadExactly(key.Span);
            return new KeyFileKek(key);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A source that loads <paramref name="path"/>; with <paramref name="createIfMissing"/>, a missing file is created when a
    /// new KEK is wanted (new store, rotation target), never when an existing store asks for its KEK.
    /// </summary>
    public static IKeyEncryptionKeySource Source(string path, bool createIfMissing = false) => new FileSource(path, createIfMissing);

    public byte[] Wrap(ReadOnlySpan<byte> dataKey, ReadOnlySpan<byte> associatedData) =>
        Envelope.Seal(_key.ReadOnlySpan, dataKey, associatedData);

    public SecretBuffer Unwrap(ReadOnlySpan<byte> wrapped, ReadOnlySpan<byte> associatedData) =>
        Envelope.Open(_key.ReadOnlySpan, wrapped, associatedData);

    public void Dispose() => _key.Dispose();

    public override string ToString() => $"KeyFileKek({Id})";

    private sealed class FileSource(string path, bool createIfMissing) : IKeyEncryptionKeySource
    {
        public IKeyEncryptionKey Open(KekDescriptor? existing)
        {
            if (existing is not null && existing.Kind != KindName)
            {
                throw StorageErrors.Invalid("kek", $"the store is sealed with a '{existing.Kind}' key-encryption key, not a key file");
            }

            // Only a new store (or a rotation target) may create the file; an existing store needs its own file.
            return createIfMissing && existing is null && !File.Exists(path) ? CreateFile(path) : Load(path);
        }
    }
}
