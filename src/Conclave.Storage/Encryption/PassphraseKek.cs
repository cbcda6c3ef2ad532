using System.Buffers.Binary;
using System.Security.Cryptography;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Kdf;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Storage.Internal;

namespace Conclave.Storage.Encryption;

/// <summary>
/// A KEK derived from a passphrase with Argon2id (RFC 9106, libsodium crypto_pwhash). The salt and cost parameters
/// are the public <see cref="IKeyEncryptionKey.Descriptor"/>: <c>"A2ID" ‖ u32be iterations ‖ u32be memoryKiB ‖ salt(16)</c>.
/// Data keys are wrapped with <see cref="Envelope"/> (XChaCha20-Poly1305).
/// </summary>
public sealed class PassphraseKek : IKeyEncryptionKey
{
    public const string KindName = "passphrase-argon2id";
    private const int DescriptorSize = 4 + 4 + 4 + Argon2id.SaltSizeInBytes;

    private readonly SecretBuffer _key;
    private readonly byte[] _descriptor;

    private PassphraseKek(SecretBuffer key, byte[] descriptor)
    {
        _key = key;
        _descriptor = descriptor;
        Id = "a2id-" + Convert.ToHexStringLower(descriptor.AsSpan(12, 8));
    }

    public string Id { get; }

    public string Kind => KindName;

    public ReadOnlyMemory<byte> Descriptor => _descriptor;

    /// <summary>Derives a new KEK with a fresh random salt.</summary>
    public static PassphraseKek Create(ReadOnlySpan<char> passphrase, Argon2idParameters parameters, IRandomSource? random = null)
    {
        if (passphrase.IsEmpty)
        {
            throw StorageErrors.Invalid("passphrase", "must not be empty");
        }

        byte[] descriptor = new byte[DescriptorSize];
        "A2ID"u8.CopyTo(descriptor);
        BinaryPrimitives.WriteUInt32BigEndian(descriptor.AsSpan(4), checked((uint)parameters.Iterations));
        BinaryPrimitives.WriteUInt32BigEndian(descriptor.AsSpan(8), checked((uint)parameters.MemoryKiB));
        (random ?? SystemRandomSource.Instance).Fill(descriptor.AsSpan(12));
        return Derive(passphrase, descriptor);
    }

    /// <summary>Recreates a KEK from its passphrase and stored descriptor.</summary>
    public static PassphraseKek Open(ReadOnlySpan<char> passphrase, ReadOnlySpan<byte> descriptor)
    {
        if (descriptor.Length != DescriptorSize || !descriptor[..4].SequenceEqual("A2ID"u8))
        {
            throw StorageErrors.Invalid("descriptor", "not an Argon2id KEK descriptor");
        }

        uint iterations = BinaryPrimitives.ReadUInt32BigEndian(descriptor[4..]);
        uint memory = BinaryPrimitives.ReadUInt32BigEndian(descriptor[8..]);
        if (iterations is 0 or > 64 || memory is < 8 or > 4 * 1024 * 1024)
        {
            throw StorageErrors.Invalid("descriptor", "Argon2id parameters out of range");
        }

        return Derive(passphrase, descriptor.ToArray());
    }

    /// <summary>A source that recreates the stored KEK, or creates a new one with <paramref name="parametersForNew"/>.</summary>
    public static IKeyEncryptionKeySource Source(string passphrase, Argon2idParameters? parametersForNew = null) =>
        new PassphraseSource(passphrase, parametersForNew ?? Argon2idParameters.Interactive);

    private static PassphraseKek Derive(ReadOnlySpan<char> passphrase, byte[] descriptor)
    {
        var p = new Argon2idParameters(
            (int)BinaryPrimitives.ReadUInt32BigEndian(descriptor.AsSpan(4)),
            (int)BinaryPrimitives.ReadUInt32BigEndian(descriptor.AsSpan(8)));
        SecretBuffer key = Argon2id.DeriveKey(passphrase, descriptor.AsSpan(12, Argon2id.SaltSizeInBytes), p, 32);
        return new PassphraseKek(key, descriptor);
    }

    public byte[] Wrap(ReadOnlySpan<byte> dataKey, ReadOnlySpan<byte> associatedData) =>
        Envelope.Seal(_key.ReadOnlySpan, dataKey, associatedData);

    public SecretBuffer Unwrap(ReadOnlySpan<byte> wrapped, ReadOnlySpan<byte> associatedData) =>
        Envelope.Open(_key.ReadOnlySpan, wrapped, associatedData);

    public void Dispose() => _key.Dispose();

    public override string ToString() => $"PassphraseKek({Id})";

    private sealed class PassphraseSource(string passphrase, Argon2idParameters parameters) : IKeyEncryptionKeySource
    {
        public IKeyEncryptionKey Open(KekDescriptor? existing)
        {
            if (existing is null)
            {
                return Create(passphrase, parameters);
            }

            if (existing.Kind != KindName)
            {
                throw StorageErrors.Invalid("kek", $"the store is sealed with a '{existing.Kind}' key-encryption key, not a passphrase");
            }

            return PassphraseKek.Open(passphrase, existing.Descriptor);
        }

        public override string ToString() => "PassphraseSource";
    }
}
