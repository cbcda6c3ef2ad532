using Conclave.Crypto.Memory;

namespace Conclave.Storage.Encryption;

/// <summary>
/// A key-encryption key (KEK): wraps and unwraps the per-secret data keys of envelope encryption.
/// Implementations: <see cref="PassphraseKek"/> (Argon2id), <see cref="KeyFileKek"/> (a 32-byte file), and the
/// HSM backend (a wrapping key inside a PKCS#11 token). The KEK itself never reaches the store.
/// </summary>
public interface IKeyEncryptionKey : IDisposable
{
    /// <summary>A stable, non-secret id recorded next to every data key it wraps.</summary>
    string Id { get; }

    /// <summary>The KEK kind, for example <c>passphrase-argon2id</c>, <c>key-file</c> or <c>hsm</c>.</summary>
    string Kind { get; }

    /// <summary>
    /// Public parameters needed to recreate the KEK later (salt and Argon2id costs, an HSM label); never secret.
    /// The store keeps them so the operator only supplies the passphrase, key file or token.
    /// </summary>
    ReadOnlyMemory<byte> Descriptor { get; }

    /// <summary>Wraps a data key; <paramref name="associatedData"/> binds it to its record.</summary>
    byte[] Wrap(ReadOnlySpan<byte> dataKey, ReadOnlySpan<byte> associatedData);

    /// <summary>
    /// Unwraps a data key. Implementations must throw <see cref="Conclave.Crypto.Aead.EnvelopeException"/> when the wrapped
    /// key or its associated data does not authenticate (the store maps that to <see cref="StorageErrorKind.Corrupted"/> or,
    /// for the check value, to <see cref="StorageErrorKind.WrongKeyEncryptionKey"/>); other exceptions mean the backend failed.
    /// </summary>
    SecretBuffer Unwrap(ReadOnlySpan<byte> wrapped, ReadOnlySpan<byte> associatedData);
}

/// <summary>The non-secret record of a KEK a store (or backup) was sealed under.</summary>
public sealed record KekDescriptor(string Id, string Kind, byte[] Descriptor);

/// <summary>
/// Produces the KEK for a store: given the descriptor the store already holds (null for a new store or a rotation
/// target), it recreates that KEK or creates a new one. This is what callers pass to open a store; the HSM backend
/// implements it for its tokens.
/// </summary>
public interface IKeyEncryptionKeySource
{
    /// <summary>Recreates the KEK described by <paramref name="existing"/>, or creates a new KEK when it is null.</summary>
    IKeyEncryptionKey Open(KekDescriptor? existing);
}
