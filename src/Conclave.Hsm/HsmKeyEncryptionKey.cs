using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Memory;
using Conclave.Hsm.Internal;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using Net.Pkcs11Interop.HighLevelAPI.MechanismParams;

namespace Conclave.Hsm;

/// <summary>
/// The key store's key-encryption key (KEK) held in a PKCS#11 token: an AES-256 key that never leaves it wraps and
/// unwraps the store's data keys with CKM_AES_GCM inside the token (NIST SP 800-38D; PKCS#11 v3.0 Current Mechanisms
/// section 2.12.3). A wrapped key is
/// <c>version (1) ‖ algorithm (1) ‖ IV (12) ‖ ciphertext ‖ tag (16)</c>; the GCM associated data is
/// <c>"conclave/hsm-kek/v1" ‖ u8 len ‖ KEK id ‖ version ‖ algorithm ‖ caller's associated data</c>, so a blob altered
/// in any byte, presented to another KEK, or moved to another record fails to unwrap.
/// IVs are 96 random bits per wrap (SP 800-38D section 8.2.2); stay well below 2^32 wraps per KEK (rotate it).
/// Its members match Conclave.Storage's <c>IKeyEncryptionKey</c> (Id, Kind, Descriptor, Wrap, Unwrap, Dispose),
/// so the store's HSM backend is a one-line adapter.
/// </summary>
public sealed class HsmKeyEncryptionKey : Conclave.Storage.Encryption.IKeyEncryptionKey
{
    /// <summary>The KEK kind recorded by the key store.</summary>
    public const string KindName = "hsm";

    private static ReadOnlySpan<byte> DescriptorMagic => "HKEK"u8;

    internal const int KeySizeInBytes = 32;
    internal const byte FormatVersion = 1;
    internal const byte AlgorithmAesGcm = 1;
    internal const int HeaderSize = 2;
    internal const int IvSize = 12;
    internal const int TagSize = 16;

    /// <summary>The largest data key accepted (data keys are 32 bytes; this bounds misuse, not the format).</summary>
    public const int MaxDataKeySizeInBytes = 1024;

    private static ReadOnlySpan<byte> Domain => "conclave/hsm-kek/v1"u8;

    private readonly HsmToken _token;
    private readonly IObjectHandle _handle;
    private readonly byte[] _associatedPrefix;

    internal HsmKeyEncryptionKey(HsmToken token, string id, IObjectHandle handle)
    {
        _token = token;
        _handle = handle;
        Id = id;
        byte[] idBytes = Encoding.ASCII.GetBytes(id);
        _associatedPrefix = [.. Domain, (byte)idBytes.Length, .. idBytes];
        byte[] label = Encoding.UTF8.GetBytes(token.TokenLabel);
        Descriptor = (byte[])[.. DescriptorMagic, (byte)idBytes.Length, .. idBytes, (byte)label.Length, .. label];
    }

    /// <summary>The KEK id (CKA_LABEL on the token).</summary>
    public string Id { get; }

    /// <summary>The KEK kind for the key store: <c>hsm</c>.</summary>
    public string Kind => KindName;

    /// <summary>
    /// Public, non-secret parameters to find the KEK again: <c>"HKEK" ‖ u8 len ‖ KEK id ‖ u8 len ‖ token label</c>.
    /// The module path and the PIN come from the configuration, never from the store.
    /// </summary>
    public ReadOnlyMemory<byte> Descriptor { get; }

    /// <summary>Reads the KEK id (and the token label it was created on) from a <see cref="Descriptor"/>.</summary>
    public static bool TryParseDescriptor(ReadOnlySpan<byte> descriptor, out string kekId, out string tokenLabel)
    {
        kekId = tokenLabel = string.Empty;
        if (descriptor.Length < 6 || !descriptor[..4].SequenceEqual(DescriptorMagic))
        {
            return false;
        }

        int idLength = descriptor[4];
        if (descriptor.Length < 5 + idLength + 1)
        {
            return false;
        }

        int labelLength = descriptor[5 + idLength];
        if (descriptor.Length != 6 + idLength + labelLength)
        {
            return false;
        }

        string id = Encoding.ASCII.GetString(descriptor.Slice(5, idLength));
        if (!HsmToken.IsValidKeyId(id))
        {
            return false;
        }

        kekId = id;
        tokenLabel = Encoding.UTF8.GetString(descriptor.Slice(6 + idLength, labelLength));
        return true;
    }

    /// <summary>The wrapping algorithm, for the store's metadata and for operators.</summary>
    public static string Algorithm => "AES-256-GCM in the HSM (CKM_AES_GCM)";

    /// <summary>The size of a wrapped key for a data key of <paramref name="dataKeyLength"/> bytes.</summary>
    public static int WrappedSize(int dataKeyLength) => HeaderSize + IvSize + dataKeyLength + TagSize;

    /// <summary>Encrypts a data key under the KEK inside the token.</summary>
    public byte[] Wrap(ReadOnlySpan<byte> dataKey) => Wrap(dataKey, []);

    /// <summary>Decrypts a wrapped data key (wrapped without associated data); see <see cref="Unwrap(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>.</summary>
    public SecretBuffer Unwrap(ReadOnlySpan<byte> wrapped) => Unwrap(wrapped, []);

    /// <summary>Encrypts a data key under the KEK inside the token, bound to <paramref name="associatedData"/> (for example the record id).</summary>
    public byte[] Wrap(ReadOnlySpan<byte> dataKey, ReadOnlySpan<byte> associatedData)
    {
        if (dataKey.Length is 0 or > MaxDataKeySizeInBytes)
        {
            throw new ArgumentException($"dataKey must be 1 to {MaxDataKeySizeInBytes} bytes, got {dataKey.Length}", nameof(dataKey));
        }

        byte[] header = [FormatVersion, AlgorithmAesGcm];
        byte[] aad = AssociatedData(header, associatedData);
        byte[] iv = new byte[IvSize];
        _token.Random.Fill(iv);
        byte[] plaintext = GC.AllocateArray<byte>(dataKey.Length, pinned: true);
        try
        {
            dataKey.CopyTo(plaintext);
            byte[] sealedBytes = _token.Run("wrapping a data key (C_Encrypt with CKM_AES_GCM)", session =>
            {
                using IMechanismParams gcm = _token.Factories.MechanismParamsFactory.CreateCkGcmParams(iv, IvSize * 8, aad, TagSize * 8);
                using IMechanism mechanism = _token.Factories.MechanismFactory.Create(CKM.CKM_AES_GCM, gcm);
                return session.Encrypt(mechanism, _handle, plaintext);
            });
            if (sealedBytes.Length != dataKey.Length + TagSize)
            {
                throw HsmErrors.Device(_token.TokenLabel, "wrapping a data key", $"CKM_AES_GCM returned {sealedBytes.Length} bytes, expected {dataKey.Length + TagSize}");
            }

            return [.. header, .. iv, .. sealedBytes];
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>
    /// Decrypts a wrapped data key inside the token into a guarded <see cref="SecretBuffer"/> (the caller disposes it).
    /// Throws <see cref="HsmException"/> with <see cref="HsmErrorKind.WrappedKeyInvalid"/> if it fails authentication
    /// (altered, wrapped under another KEK, or with other associated data).
    /// </summary>
    public SecretBuffer Unwrap(ReadOnlySpan<byte> wrapped, ReadOnlySpan<byte> associatedData)
    {
        if (wrapped.Length < HeaderSize + IvSize + 1 + TagSize)
        {
            throw HsmErrors.WrappedKeyInvalid(Id, $"it is {wrapped.Length} bytes, shorter than any wrapped key");
        }

        if (wrapped[0] != FormatVersion || wrapped[1] != AlgorithmAesGcm)
        {
            throw HsmErrors.WrappedKeyInvalid(Id, $"unknown format version {wrapped[0]} or algorithm {wrapped[1]}");
        }

        if (wrapped.Length > WrappedSize(MaxDataKeySizeInBytes))
        {
            throw HsmErrors.WrappedKeyInvalid(Id, $"it is {wrapped.Length} bytes, longer than any wrapped key");
        }

        byte[] header = wrapped[..HeaderSize].ToArray();
        byte[] iv = wrapped.Slice(HeaderSize, IvSize).ToArray();
        byte[] ciphertext = wrapped[(HeaderSize + IvSize)..].ToArray();
        byte[] aad = AssociatedData(header, associatedData);
        byte[] plaintext = _token.Run(
            "unwrapping a data key (C_Decrypt with CKM_AES_GCM)",
            session =>
            {
                using IMechanismParams gcm = _token.Factories.MechanismParamsFactory.CreateCkGcmParams(iv, IvSize * 8, aad, TagSize * 8);
                using IMechanism mechanism = _token.Factories.MechanismFactory.Create(CKM.CKM_AES_GCM, gcm);
                return session.Decrypt(mechanism, _handle, ciphertext);
            },
            // SoftHSM2 reports a failed GCM tag check as CKR_GENERAL_ERROR; the standard codes are ENCRYPTED_DATA_*.
            e => e.RV is CKR.CKR_ENCRYPTED_DATA_INVALID or CKR.CKR_ENCRYPTED_DATA_LEN_RANGE or CKR.CKR_GENERAL_ERROR or CKR.CKR_FUNCTION_FAILED
                ? HsmErrors.WrappedKeyInvalid(Id, "authentication failed: it was altered, or wrapped under another key", e.RV, e)
                : null);
        try
        {
            if (plaintext.Length != ciphertext.Length - TagSize)
            {
                throw HsmErrors.Device(_token.TokenLabel, "unwrapping a data key", $"CKM_AES_GCM returned {plaintext.Length} bytes, expected {ciphertext.Length - TagSize}");
            }

            return SecretBuffer.CopyFrom(plaintext, SecretMemoryKind.Guarded);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    private byte[] AssociatedData(byte[] header, ReadOnlySpan<byte> associatedData) => [.. _associatedPrefix, .. header, .. associatedData];

    /// <summary>Nothing to release: the key stays in the token, and the token owns the sessions.</summary>
    public void Dispose()
    {
    }

    public override string ToString() => $"HsmKeyEncryptionKey({Id}, {Algorithm})";
}
