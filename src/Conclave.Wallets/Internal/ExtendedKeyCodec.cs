using System.Buffers.Binary;
using System.Security.Cryptography;
using Conclave.Wallets.Codecs;
using Conclave.Wallets.Hd;

namespace Conclave.Wallets.Internal;

/// <summary>
/// BIP-32 "Serialization format": version(4) || depth(1) || parent fingerprint(4) || child number(4) ||
/// chain code(32) || key data(33), Base58Check-encoded. Decoding applies every check of BIP-32 test vector 5.
/// </summary>
internal static class ExtendedKeyCodec
{
    internal const int PayloadSizeInBytes = 78;

    internal readonly ref struct Fields
    {
        internal Fields(ReadOnlySpan<byte> payload)
        {
            Version = BinaryPrimitives.ReadUInt32BigEndian(payload[..4]);
            Depth = payload[4];
            ParentFingerprint = BinaryPrimitives.ReadUInt32BigEndian(payload[5..9]);
            ChildNumber = BinaryPrimitives.ReadUInt32BigEndian(payload[9..13]);
            ChainCode = payload[13..45];
            KeyData = payload[45..78];
        }

        internal uint Version { get; }

        internal byte Depth { get; }

        internal uint ParentFingerprint { get; }

        internal uint ChildNumber { get; }

        internal ReadOnlySpan<byte> ChainCode { get; }

        internal ReadOnlySpan<byte> KeyData { get; }
    }

    internal static string Encode(uint version, byte depth, uint parentFingerprint, uint childNumber, ReadOnlySpan<byte> chainCode, ReadOnlySpan<byte> keyData33)
    {
        Span<byte> payload = stackalloc byte[PayloadSizeInBytes];
        try
        {
            BinaryPrimitives.WriteUInt32BigEndian(payload[..4], version);
            payload[4] = depth;
            BinaryPrimitives.WriteUInt32BigEndian(payload[5..9], parentFingerprint);
            BinaryPrimitives.WriteUInt32BigEndian(payload[9..13], childNumber);
            chainCode.CopyTo(payload[13..45]);
            keyData33.CopyTo(payload[45..78]);
            return Base58Check.Encode(payload);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(payload);
        }
    }

    /// <summary>Decodes the Base58Check text and checks length, version and the depth-0 rules. The caller zeroes the result.</summary>
    internal static byte[] Decode(string text, out Bip32Network network, out bool isPrivate)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] payload;
        try
        {
            payload = Base58Check.Decode(text.Trim());
        }
        catch (Crypto.CryptoFormatException e)
        {
            throw WalletErrors.ExtendedKey(e.Message.Replace("invalid Base58 text: ", string.Empty, StringComparison.Ordinal));
        }

        try
        {
            if (payload.Length != PayloadSizeInBytes)
            {
                throw WalletErrors.ExtendedKey($"it must decode to {PayloadSizeInBytes} bytes, got {payload.Length}");
            }

            var f = new Fields(payload);
            network = Bip32Network.FromVersion(f.Version, out isPrivate)
                ?? throw WalletErrors.ExtendedKey("unknown version (expected xprv, xpub, tprv or tpub)");
            if (f.Depth == 0 && f.ParentFingerprint != 0)
            {
                throw WalletErrors.ExtendedKey("depth is zero but the parent fingerprint is not");
            }

            if (f.Depth == 0 && f.ChildNumber != 0)
            {
                throw WalletErrors.ExtendedKey("depth is zero but the child number is not");
            }

            return payload;
        }
        catch
        {
            CryptographicOperations.ZeroMemory(payload);
            throw;
        }
    }
}
