using Conclave.Crypto.Signing;
using Conclave.Hsm.Internal;
using Conclave.Hsm.Schemes;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace Conclave.Hsm;

/// <summary>
/// A signing key whose private half lives only in a PKCS#11 token (<see cref="HsmSignatureScheme"/>). This object
/// holds no secret: only the token's object handle, the key id and the public key. <see cref="Sign"/> runs
/// C_Sign on a pooled session and checks the token's output before returning it. Thread-safe.
/// </summary>
public sealed class HsmSigningKey : ISigningKey
{
    private readonly HsmToken _token;
    private readonly HsmSignatureScheme _scheme;
    private readonly byte[] _publicKey;
    private IObjectHandle _handle;
    private int _disposed;

    internal HsmSigningKey(HsmToken token, HsmSignatureScheme scheme, string id, byte[] publicKey, IObjectHandle handle, HsmKeyProtection protection)
    {
        _token = token;
        _scheme = scheme;
        Id = id;
        _publicKey = publicKey;
        _handle = handle;
        Protection = protection;
    }

    /// <summary>The Conclave key id (CKA_LABEL and CKA_ID on the token).</summary>
    public string Id { get; }

    public SignatureScheme Scheme => _scheme;

    /// <summary>The scheme as its HSM type.</summary>
    public HsmSignatureScheme HsmScheme => _scheme;

    public ReadOnlyMemory<byte> PublicKey => _publicKey;

    /// <summary>The private key's protection attributes, as read when the key was opened or generated.</summary>
    public HsmKeyProtection Protection { get; }

    /// <summary>The token's handle of the private key (valid in every session of this process until the module is finalized).</summary>
    internal IObjectHandle PrivateKeyHandle => Volatile.Read(ref _handle);

    /// <summary>
    /// Signs a 32-byte digest (<c>hsm-ecdsa-secp256k1</c>) or a message (<c>hsm-ed25519</c>) inside the token.
    /// Throws <see cref="HsmException"/> if the token fails or returns a signature that does not verify.
    /// </summary>
    public SignatureResult Sign(ReadOnlySpan<byte> input)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        _scheme.ValidateInput(input);
        byte[] data = input.ToArray();
        byte[] raw = SignRaw(data, retryOnStaleHandle: true);
        return _scheme.FinishSignature(raw, data, _publicKey)
            ?? throw HsmErrors.BadSignature(_token.TokenLabel, Id, _scheme.Name);
    }

    /// <summary>
    /// As <see cref="Sign"/>, but while every pooled session is busy the wait for one is asynchronous, so the calling
    /// thread-pool thread is released (the PKCS#11 call itself is synchronous).
    /// </summary>
    public async Task<SignatureResult> SignAsync(ReadOnlyMemory<byte> input, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        _scheme.ValidateInput(input.Span);
        byte[] data = input.ToArray();
        bool stale = false;
        byte[]? raw = await _token.RunAsync($"C_Sign with {_scheme.SignMechanism.Name}", session => SignOnSession(session, data, true, ref stale), cancellationToken)
            .ConfigureAwait(false);
        if (stale)
        {
            bool again = false;
            raw = await _token.RunAsync($"C_Sign with {_scheme.SignMechanism.Name}", session => SignOnSession(session, data, false, ref again), cancellationToken)
                .ConfigureAwait(false);
        }

        return _scheme.FinishSignature(raw!, data, _publicKey)
            ?? throw HsmErrors.BadSignature(_token.TokenLabel, Id, _scheme.Name);
    }

    private byte[]? SignOnSession(ISession session, byte[] data, bool retryOnStaleHandle, ref bool stale)
    {
        using IMechanism mechanism = _token.Factories.MechanismFactory.Create(_scheme.SignMechanism.Mechanism);
        try
        {
            return session.Sign(mechanism, PrivateKeyHandle, data);
        }
        catch (Pkcs11Exception e) when (retryOnStaleHandle && e.RV is CKR.CKR_KEY_HANDLE_INVALID or CKR.CKR_OBJECT_HANDLE_INVALID
            && SessionPool.IsLoggedIn(session))
        {
            // The handle went stale (another process re-created objects, or the token was reset): find the key again.
            IObjectHandle? fresh = _token.FindSingle(session, CKO.CKO_PRIVATE_KEY, Id)
                ?? throw HsmErrors.KeyNotFound(_token.TokenLabel, Id, "signing key");
            Volatile.Write(ref _handle, fresh);
            stale = true;
            return null;
        }
    }

    private byte[] SignRaw(byte[] data, bool retryOnStaleHandle)
    {
        bool stale = false;
        byte[]? raw = _token.Run($"C_Sign with {_scheme.SignMechanism.Name}", session => SignOnSession(session, data, retryOnStaleHandle, ref stale));
        return stale ? SignRaw(data, retryOnStaleHandle: false) : raw!;
    }

    /// <summary>Releases nothing on the token (the key stays there); later use of this object throws.</summary>
    public void Dispose() => Interlocked.Exchange(ref _disposed, 1);

    public override string ToString() => $"HsmSigningKey({Id}, {_scheme.Name}, {Convert.ToHexStringLower(_publicKey)})";
}
