using Conclave.Storage.Encryption;

namespace Conclave.Hsm;

/// <summary>
/// The HSM as a key store's KEK source: an AES-256 key inside the token (sensitive, never extractable) wraps the
/// store's data keys. A new store gets the KEK named <paramref name="kekId"/> (created if the token has none);
/// an existing store names its KEK in the descriptor it recorded, which must be on the same token.
/// </summary>
public sealed class HsmKekSource(HsmToken token, string kekId) : IKeyEncryptionKeySource
{
    public IKeyEncryptionKey Open(KekDescriptor? existing)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (existing is null)
        {
            return token.GetOrCreateKeyEncryptionKey(kekId);
        }

        if (existing.Kind != HsmKeyEncryptionKey.KindName || !HsmKeyEncryptionKey.TryParseDescriptor(existing.Descriptor, out string id, out _))
        {
            throw new HsmException(HsmErrorKind.KeyNotFound, $"the store's KEK ({existing.Kind}) is not an HSM key");
        }

        return token.OpenKeyEncryptionKey(id);
    }
}
