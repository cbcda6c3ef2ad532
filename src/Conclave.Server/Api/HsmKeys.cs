using System.Collections.Concurrent;
using Conclave.Crypto.Signing;
using Conclave.Hsm;
using Conclave.Hsm.Schemes;
using Conclave.Storage.Keys;

namespace Conclave.Server.Api;

/// <summary>
/// The API's keys of the schemes <c>hsm-ecdsa-secp256k1</c> and <c>hsm-ed25519</c> (docs/HSM.md "Keys through the
/// server"): generated inside the PKCS#11 token the server holds a session to (server.json <c>hsm</c>), never exported.
/// The server store keeps the key row (name, scheme, public key, labels) and no material; the token key's id
/// (<c>CKA_ID</c>/<c>CKA_LABEL</c>) is the key's store id. Every signature is made by the token and checked by
/// Conclave.Hsm against the public key before it is returned (low-S and recovery id for ECDSA, strict verify for Ed25519).
/// </summary>
public sealed class HsmKeys(HsmToken? token) : IDisposable
{
    private readonly ConcurrentDictionary<string, HsmSigningKey> _open = new(StringComparer.Ordinal);

    public static bool IsHsmScheme(string scheme, out HsmSignatureScheme? hsm) => HsmSignatureSchemes.TryGet(scheme, out hsm);

    /// <summary>Whether the server holds a token session.</summary>
    public bool Configured => token is not null;

    private HsmToken Token => token ?? throw new ApiException(ProblemTypes.NotImplemented,
        "this server has no HSM token configured: add the \"hsm\" section (modulePath, tokenLabel, pinFile) to server.json (docs/HSM.md)");

    /// <summary>Generates the key pair inside the token under <paramref name="keyId"/>; returns its public key.</summary>
    public byte[] Generate(HsmSignatureScheme scheme, string keyId)
    {
        ArgumentNullException.ThrowIfNull(scheme);
        HsmToken t = Token;
        try
        {
            if (!t.Supports(scheme))
            {
                throw new ApiException(ProblemTypes.Unsupported, $"the token '{t.TokenLabel}' does not offer the mechanisms {scheme.Name} needs (docs/HSM.md)");
            }

            HsmSigningKey key = t.GenerateKey(scheme, keyId);
            _open[keyId] = key;
            return key.PublicKey.ToArray();
        }
        catch (HsmException e)
        {
            throw Problem(e);
        }
    }

    /// <summary>Removes a key pair the store did not take (a name taken meanwhile): nothing is left on the token.</summary>
    public void Delete(string keyId)
    {
        if (_open.TryRemove(keyId, out HsmSigningKey? k))
        {
            k.Dispose();
        }

        try
        {
            _ = token?.DeleteKey(keyId);
        }
        catch (HsmException)
        {
            // Best effort: the key has no store row, so nothing can use it; `conclave hsm keys list` shows it.
        }
    }

    /// <summary>
    /// Signs <paramref name="input"/> (a 32-byte digest for ECDSA, the message for Ed25519) with the token key of a
    /// store row. The token's public key must be the row's (a row edited to name another token key is refused).
    /// </summary>
    public async Task<SignatureResult> SignAsync(KeyRecord record, byte[] input, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(record);
        HsmSigningKey key = Open(record);
        try
        {
            return await key.SignAsync(input, ct).ConfigureAwait(false);
        }
        catch (HsmException e)
        {
            throw Problem(e);
        }
    }

    private HsmSigningKey Open(KeyRecord record)
    {
        HsmToken t = Token;
        if (!_open.TryGetValue(record.Id, out HsmSigningKey? key))
        {
            try
            {
                key = t.OpenKey(record.Id);
            }
            catch (HsmException e)
            {
                throw Problem(e);
            }

            if (!_open.TryAdd(record.Id, key))
            {
                key.Dispose();
                key = _open[record.Id];
            }
        }

        if (key.Scheme.Name != record.Scheme || !key.PublicKey.Span.SequenceEqual(record.PublicKey))
        {
            throw new ApiException(ProblemTypes.KeyIntegrity,
                $"key '{record.Id}': the token key with this id is not the key the record names (another scheme or public key); it is refused");
        }

        return key;
    }

    /// <summary>The HSM's own error line (module, token, key id, mechanism, CKR code; never the PIN) as a problem.</summary>
    private static ApiException Problem(HsmException e) => new(e.Kind switch
    {
        HsmErrorKind.KeyNotFound => ProblemTypes.KeyIntegrity,
        HsmErrorKind.UnsupportedMechanism => ProblemTypes.Unsupported,
        _ => ProblemTypes.HsmUnavailable,
    }, e.Message);

    public void Dispose()
    {
        foreach (HsmSigningKey k in _open.Values)
        {
            k.Dispose();
        }

        _open.Clear();
    }
}
