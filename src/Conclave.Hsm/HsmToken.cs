using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Hsm.Internal;
using Conclave.Hsm.Interop;
using Conclave.Hsm.Schemes;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using Net.Pkcs11Interop.HighLevelAPI.Factories;

namespace Conclave.Hsm;

/// <summary>
/// An open, logged-in PKCS#11 token: generates and finds signing keys (<see cref="HsmSigningKey"/>) and key-encryption
/// keys (<see cref="HsmKeyEncryptionKey"/>) that never leave it. Thread-safe: operations draw a session from a bounded
/// pool (<see cref="HsmOptions.SessionPoolSize"/>). Dispose it last: keys opened from it stop working.
/// </summary>
public sealed class HsmToken : IDisposable
{
    private readonly Pkcs11Module _module;
    private readonly ISlot _slot;
    private readonly SessionPool _pool;
    private readonly HashSet<ulong> _mechanisms;
    private readonly Lock _createLock = new();
    private int _disposed;

    private HsmToken(Pkcs11Module module, ISlot slot, SessionPool pool, HashSet<ulong> mechanisms, string tokenLabel)
    {
        _module = module;
        _slot = slot;
        _pool = pool;
        _mechanisms = mechanisms;
        TokenLabel = tokenLabel;
    }

    /// <summary>The full path of the PKCS#11 module.</summary>
    public string ModulePath => _module.Path;

    /// <summary>The token's label.</summary>
    public string TokenLabel { get; }

    /// <summary>The number of sessions the pool may open.</summary>
    public int SessionPoolSize => _pool.Size;

    internal SessionPool Pool => _pool;

    internal ISlot Slot => _slot;

    internal Pkcs11InteropFactories Factories => _module.Factories;

    /// <summary>The randomness source for GCM nonces (health-checked OS generator unless a test injects one).</summary>
    internal IRandomSource Random { get; set; } = HealthCheckedRandomSource.System;

    /// <summary>
    /// Loads the module (shared with other tokens of this process), finds the token by label, reads the PIN from the
    /// configured file or environment variable, logs in once, and zeroes the PIN.
    /// </summary>
    public static HsmToken Open(HsmOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Pkcs11Module module = Pkcs11Module.Acquire(options.ModulePath);
        try
        {
            ISlot slot = FindSlot(module, options.TokenLabel);
            using SecretBuffer pin = PinReader.Read(options);
            ISession anchor = Login(module, slot, options.TokenLabel, pin);
            HashSet<ulong> mechanisms = [.. slot.GetMechanismList().Select(m => (ulong)m)];
            var pool = new SessionPool(slot, anchor, options.SessionPoolSize, options.SessionAcquireTimeout, options.TokenLabel,
                session => LoginAgain(module, options, session));
            return new HsmToken(module, slot, pool, mechanisms, options.TokenLabel);
        }
        catch (Pkcs11Exception e)
        {
            module.Dispose();
            throw HsmErrors.FromPkcs11(e, module.Path, options.TokenLabel, "opening the token");
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    private static ISlot FindSlot(Pkcs11Module module, string tokenLabel)
    {
        var present = new List<string>();
        var matches = new List<(ISlot Slot, ITokenInfo Info)>();
        foreach (ISlot slot in module.Library.GetSlotList(SlotsType.WithTokenPresent))
        {
            ITokenInfo info = slot.GetTokenInfo();
            if (!info.TokenFlags.TokenInitialized)
            {
                continue;
            }

            string label = info.Label.TrimEnd(' ', '\0');
            present.Add(label);
            if (string.Equals(label, tokenLabel, StringComparison.Ordinal))
            {
                matches.Add((slot, info));
            }
        }

        if (matches.Count == 0)
        {
            throw HsmErrors.TokenNotFound(module.Path, tokenLabel, present);
        }

        if (matches.Count > 1)
        {
            throw HsmErrors.AmbiguousToken(module.Path, tokenLabel, matches.Count);
        }

        ITokenFlags flags = matches[0].Info.TokenFlags;
        if (flags.UserPinLocked)
        {
            throw HsmErrors.PinLocked(module.Path, tokenLabel, "locked");
        }

        if (!flags.UserPinInitialized)
        {
            throw HsmErrors.PinLocked(module.Path, tokenLabel, "not initialised");
        }

        return matches[0].Slot;
    }

    /// <summary>Logs the application in again on <paramref name="session"/> after the token logged it out; the PIN is read afresh and zeroed.</summary>
    private static void LoginAgain(Pkcs11Module module, HsmOptions options, ISession session)
    {
        using SecretBuffer pin = PinReader.Read(options);
        byte[] pinBytes = GC.AllocateArray<byte>(pin.Length, pinned: true);
        try
        {
            pin.ReadOnlySpan.CopyTo(pinBytes);
            session.Login(CKU.CKU_USER, pinBytes);
        }
        catch (Pkcs11Exception e) when (e.RV == CKR.CKR_USER_ALREADY_LOGGED_IN)
        {
            // Another thread (or another HsmToken of this process) logged in first.
        }
        catch (Pkcs11Exception e)
        {
            throw HsmErrors.FromPkcs11(e, module.Path, options.TokenLabel, "C_Login (logging in again after the token logged out)");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pinBytes);
        }
    }

    private static ISession Login(Pkcs11Module module, ISlot slot, string tokenLabel, SecretBuffer pin)
    {
        ISession anchor = slot.OpenSession(SessionType.ReadWrite);
        byte[] pinBytes = GC.AllocateArray<byte>(pin.Length, pinned: true);
        try
        {
            pin.ReadOnlySpan.CopyTo(pinBytes);
            anchor.Login(CKU.CKU_USER, pinBytes);
            return anchor;
        }
        catch (Pkcs11Exception e) when (e.RV == CKR.CKR_USER_ALREADY_LOGGED_IN)
        {
            // Login state belongs to the application: another HsmToken of this process is logged in to this token.
            return anchor;
        }
        catch (Pkcs11Exception e)
        {
            anchor.Dispose();
            throw HsmErrors.FromPkcs11(e, module.Path, tokenLabel, "C_Login");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pinBytes);
        }
    }

    /// <summary>Whether <paramref name="keyId"/> is a valid key id: 1 to 64 characters from [A-Za-z0-9._:/-], starting with a letter or digit.</summary>
    public static bool IsValidKeyId(string? keyId)
    {
        if (keyId is null)
        {
            return false;
        }

        try
        {
            KeyIds.Validate(keyId, nameof(keyId));
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Whether the token offers every mechanism <paramref name="scheme"/> needs.</summary>
    public bool Supports(HsmSignatureScheme scheme)
    {
        ArgumentNullException.ThrowIfNull(scheme);
        return _mechanisms.Contains(scheme.GenerateMechanism.Mechanism) && _mechanisms.Contains(scheme.SignMechanism.Mechanism);
    }

    /// <summary>
    /// Generates a key pair inside the token: the private key is a token object, private, sensitive, not extractable,
    /// usable only for signing; CKA_LABEL and CKA_ID carry <paramref name="keyId"/>.
    /// </summary>
    public HsmSigningKey GenerateKey(HsmSignatureScheme scheme, string keyId)
    {
        ArgumentNullException.ThrowIfNull(scheme);
        KeyIds.Validate(keyId, nameof(keyId));
        ThrowIfDisposed();
        RequireMechanism(scheme.GenerateMechanism, $"{scheme.Name} key generation");
        RequireMechanism(scheme.SignMechanism, $"{scheme.Name} signing");

        lock (_createLock)
        {
            return Run("key pair generation", session =>
            {
                if (FindByLabel(session, CKO.CKO_PRIVATE_KEY, keyId).Count > 0 || FindByLabel(session, CKO.CKO_PUBLIC_KEY, keyId).Count > 0)
                {
                    throw HsmErrors.KeyExists(TokenLabel, keyId);
                }

                (IObjectHandle pub, IObjectHandle priv) = GenerateKeyPair(session, scheme, keyId);
                byte[] ecPoint = session.GetAttributeValue(pub, [CKA.CKA_EC_POINT])[0].GetValueAsByteArray();
                byte[]? publicKey = scheme.DecodePublicKey(ecPoint);
                if (publicKey is null)
                {
                    session.DestroyObject(priv);
                    session.DestroyObject(pub);
                    throw HsmErrors.Device(TokenLabel, "key pair generation", $"the token returned a malformed {scheme.Name} public key (CKA_EC_POINT); the key pair was destroyed");
                }

                return new HsmSigningKey(this, scheme, keyId, publicKey, priv, ReadProtection(session, priv));
            });
        }
    }

    private (IObjectHandle Public, IObjectHandle Private) GenerateKeyPair(ISession session, HsmSignatureScheme scheme, string keyId)
    {
        IObjectAttributeFactory af = Factories.ObjectAttributeFactory;
        byte[] id = KeyIds.ToBytes(keyId);
        Pkcs11Exception? last = null;
        foreach (byte[] ecParams in scheme.ECParameterCandidates)
        {
            List<IObjectAttribute> publicTemplate =
            [
                af.Create(CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY),
                af.Create(CKA.CKA_KEY_TYPE, scheme.KeyType),
                af.Create(CKA.CKA_TOKEN, true),
                af.Create(CKA.CKA_PRIVATE, false),
                af.Create(CKA.CKA_VERIFY, true),
                af.Create(CKA.CKA_ENCRYPT, false),
                af.Create(CKA.CKA_WRAP, false),
                af.Create(CKA.CKA_EC_PARAMS, ecParams),
                af.Create(CKA.CKA_LABEL, keyId),
                af.Create(CKA.CKA_ID, id),
            ];
            List<IObjectAttribute> privateTemplate =
            [
                af.Create(CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY),
                af.Create(CKA.CKA_KEY_TYPE, scheme.KeyType),
                af.Create(CKA.CKA_TOKEN, true),
                af.Create(CKA.CKA_PRIVATE, true),
                af.Create(CKA.CKA_SENSITIVE, true),
                af.Create(CKA.CKA_EXTRACTABLE, false),
                af.Create(CKA.CKA_SIGN, true),
                af.Create(CKA.CKA_DECRYPT, false),
                af.Create(CKA.CKA_UNWRAP, false),
                af.Create(CKA.CKA_DERIVE, false),
                af.Create(CKA.CKA_LABEL, keyId),
                af.Create(CKA.CKA_ID, id),
            ];
            try
            {
                using IMechanism mechanism = Factories.MechanismFactory.Create(scheme.GenerateMechanism.Mechanism);
                session.GenerateKeyPair(mechanism, publicTemplate, privateTemplate, out IObjectHandle pub, out IObjectHandle priv);
                return (pub, priv);
            }
            catch (Pkcs11Exception e) when (e.RV is CKR.CKR_CURVE_NOT_SUPPORTED or CKR.CKR_DOMAIN_PARAMS_INVALID
                or CKR.CKR_ATTRIBUTE_VALUE_INVALID or CKR.CKR_TEMPLATE_INCONSISTENT)
            {
                last = e; // Try the next encoding of the curve.
            }
        }

        throw HsmErrors.UnsupportedMechanism(ModulePath, TokenLabel, scheme.GenerateMechanism.Name, $"{scheme.Name} key generation", last?.RV, last);
    }

    /// <summary>Opens a signing key by id; it must be a sensitive, non-extractable key of a supported scheme.</summary>
    public HsmSigningKey OpenKey(string keyId)
    {
        KeyIds.Validate(keyId, nameof(keyId));
        ThrowIfDisposed();
        return Run("opening a key", session => OpenKey(session, keyId)
            ?? throw HsmErrors.KeyNotFound(TokenLabel, keyId, "signing key"));
    }

    /// <summary>Opens a signing key by id, or returns false if the token has none with that id.</summary>
    public bool TryOpenKey(string keyId, out HsmSigningKey? key)
    {
        KeyIds.Validate(keyId, nameof(keyId));
        ThrowIfDisposed();
        key = Run("opening a key", session => OpenKey(session, keyId));
        return key is not null;
    }

    private HsmSigningKey? OpenKey(ISession session, string keyId)
    {
        IObjectHandle? priv = FindSingle(session, CKO.CKO_PRIVATE_KEY, keyId);
        if (priv is null)
        {
            return null;
        }

        HsmSignatureScheme scheme = IdentifyScheme(session, priv)
            ?? throw HsmErrors.KeyNotUsable(TokenLabel, keyId, "it is neither a secp256k1 ECDSA nor an Ed25519 key");
        HsmKeyProtection protection = ReadProtection(session, priv);
        RequireProtected(keyId, "its private key", protection);

        IObjectHandle pub = FindSingle(session, CKO.CKO_PUBLIC_KEY, keyId)
            ?? throw HsmErrors.KeyNotUsable(TokenLabel, keyId, "its public key object is missing");
        byte[] ecPoint = session.GetAttributeValue(pub, [CKA.CKA_EC_POINT])[0].GetValueAsByteArray();
        byte[] publicKey = scheme.DecodePublicKey(ecPoint)
            ?? throw HsmErrors.KeyNotUsable(TokenLabel, keyId, "its public key (CKA_EC_POINT) is malformed");
        return new HsmSigningKey(this, scheme, keyId, publicKey, priv, protection);
    }

    /// <summary>
    /// Lists the signing keys of the supported schemes on the token. A key that another session or process destroys
    /// while the listing runs (its handle turns invalid between C_FindObjects and C_GetAttributeValue) is left out
    /// rather than failing the whole listing.
    /// </summary>
    public IReadOnlyList<HsmKeyInfo> ListKeys()
    {
        ThrowIfDisposed();
        return Run("listing keys", session =>
        {
            var result = new List<HsmKeyInfo>();
            foreach (IObjectHandle priv in session.FindAllObjects([Factories.ObjectAttributeFactory.Create(CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY)]))
            {
                HsmKeyInfo? info;
                try
                {
                    info = DescribeKey(session, priv);
                }
                catch (Pkcs11Exception e) when (e.RV == CKR.CKR_OBJECT_HANDLE_INVALID)
                {
                    continue; // destroyed by someone else after the search found it: no longer on the token
                }
                catch (Pkcs11Exception e) when (e.RV is CKR.CKR_GENERAL_ERROR or CKR.CKR_FUNCTION_FAILED or CKR.CKR_ATTRIBUTE_VALUE_INVALID)
                {
                    // SoftHSM2's file store reports a read racing a delete this way (CKR_ATTRIBUTE_VALUE_INVALID when the
                    // key was destroyed while its label was read: seen in a full test run). Leave the
                    // key out only if it is really gone; otherwise read it once more and let a second failure stand.
                    if (!StillExists(session, priv))
                    {
                        continue;
                    }

                    info = DescribeKey(session, priv);
                }

                if (info is not null)
                {
                    result.Add(info);
                }
            }

            result.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
            return (IReadOnlyList<HsmKeyInfo>)result;
        });
    }

    private static bool StillExists(ISession session, IObjectHandle handle)
    {
        try
        {
            _ = session.GetAttributeValue(handle, [CKA.CKA_CLASS]);
            return true;
        }
        catch (Pkcs11Exception e) when (e.RV == CKR.CKR_OBJECT_HANDLE_INVALID)
        {
            return false;
        }
    }

    private HsmKeyInfo? DescribeKey(ISession session, IObjectHandle priv)
    {
        string label = session.GetAttributeValue(priv, [CKA.CKA_LABEL])[0].GetValueAsString() ?? string.Empty;
        HsmSignatureScheme? scheme = IdentifyScheme(session, priv);
        if (scheme is null || label.Length == 0)
        {
            return null;
        }

        IObjectHandle? pub = FindByLabel(session, CKO.CKO_PUBLIC_KEY, label).FirstOrDefault();
        byte[]? publicKey = pub is null ? null : scheme.DecodePublicKey(session.GetAttributeValue(pub, [CKA.CKA_EC_POINT])[0].GetValueAsByteArray());
        return publicKey is null ? null : new HsmKeyInfo(label, scheme, publicKey, ReadProtection(session, priv));
    }

    /// <summary>Destroys a signing key pair on the token. Returns false if there was none. This cannot be undone.</summary>
    public bool DeleteKey(string keyId)
    {
        KeyIds.Validate(keyId, nameof(keyId));
        ThrowIfDisposed();
        return Run("deleting a key", session =>
        {
            List<IObjectHandle> objects = [.. FindByLabel(session, CKO.CKO_PRIVATE_KEY, keyId), .. FindByLabel(session, CKO.CKO_PUBLIC_KEY, keyId)];
            foreach (IObjectHandle h in objects)
            {
                session.DestroyObject(h);
            }

            return objects.Count > 0;
        });
    }

    /// <summary>
    /// Creates an AES-256 key-encryption key in the token (CKM_AES_KEY_GEN; token object, sensitive, not extractable,
    /// encrypt/decrypt only) that wraps the key store's data keys with CKM_AES_GCM.
    /// </summary>
    public HsmKeyEncryptionKey CreateKeyEncryptionKey(string kekId)
    {
        KeyIds.Validate(kekId, nameof(kekId));
        ThrowIfDisposed();
        RequireMechanism(((ulong)CKM.CKM_AES_KEY_GEN, "CKM_AES_KEY_GEN"), "the key-encryption key");
        RequireMechanism(((ulong)CKM.CKM_AES_GCM, "CKM_AES_GCM"), "wrapping data keys");
        lock (_createLock)
        {
            return Run("key-encryption key generation", session =>
            {
                if (FindByLabel(session, CKO.CKO_SECRET_KEY, kekId).Count > 0)
                {
                    throw HsmErrors.KeyExists(TokenLabel, kekId);
                }

                IObjectAttributeFactory af = Factories.ObjectAttributeFactory;
                List<IObjectAttribute> template =
                [
                    af.Create(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY),
                    af.Create(CKA.CKA_KEY_TYPE, CKK.CKK_AES),
                    af.Create(CKA.CKA_VALUE_LEN, (ulong)HsmKeyEncryptionKey.KeySizeInBytes),
                    af.Create(CKA.CKA_TOKEN, true),
                    af.Create(CKA.CKA_PRIVATE, true),
                    af.Create(CKA.CKA_SENSITIVE, true),
                    af.Create(CKA.CKA_EXTRACTABLE, false),
                    af.Create(CKA.CKA_ENCRYPT, true),
                    af.Create(CKA.CKA_DECRYPT, true),
                    af.Create(CKA.CKA_WRAP, false),
                    af.Create(CKA.CKA_UNWRAP, false),
                    af.Create(CKA.CKA_SIGN, false),
                    af.Create(CKA.CKA_VERIFY, false),
                    af.Create(CKA.CKA_DERIVE, false),
                    af.Create(CKA.CKA_LABEL, kekId),
                    af.Create(CKA.CKA_ID, KeyIds.ToBytes(kekId)),
                ];
                using IMechanism mechanism = Factories.MechanismFactory.Create(CKM.CKM_AES_KEY_GEN);
                IObjectHandle handle = session.GenerateKey(mechanism, template);
                return new HsmKeyEncryptionKey(this, kekId, handle);
            });
        }
    }

    /// <summary>Opens an existing key-encryption key; it must be a sensitive, non-extractable AES-256 key.</summary>
    public HsmKeyEncryptionKey OpenKeyEncryptionKey(string kekId)
    {
        KeyIds.Validate(kekId, nameof(kekId));
        ThrowIfDisposed();
        RequireMechanism(((ulong)CKM.CKM_AES_GCM, "CKM_AES_GCM"), "wrapping data keys");
        return Run("opening a key-encryption key", session => OpenKek(session, kekId)
            ?? throw HsmErrors.KeyNotFound(TokenLabel, kekId, "key-encryption key"));
    }

    /// <summary>Opens the key-encryption key <paramref name="kekId"/>, creating it first if the token has none.</summary>
    public HsmKeyEncryptionKey GetOrCreateKeyEncryptionKey(string kekId)
    {
        KeyIds.Validate(kekId, nameof(kekId));
        ThrowIfDisposed();
        lock (_createLock)
        {
            HsmKeyEncryptionKey? existing = Run("opening a key-encryption key", session => OpenKek(session, kekId));
            return existing ?? CreateKeyEncryptionKey(kekId);
        }
    }

    /// <summary>
    /// Destroys a key-encryption key. Every data key wrapped under it becomes unrecoverable: rewrap them under a new
    /// KEK first. Returns false if there was none.
    /// </summary>
    public bool DeleteKeyEncryptionKey(string kekId)
    {
        KeyIds.Validate(kekId, nameof(kekId));
        ThrowIfDisposed();
        return Run("deleting a key-encryption key", session =>
        {
            List<IObjectHandle> objects = FindByLabel(session, CKO.CKO_SECRET_KEY, kekId);
            foreach (IObjectHandle h in objects)
            {
                session.DestroyObject(h);
            }

            return objects.Count > 0;
        });
    }

    private HsmKeyEncryptionKey? OpenKek(ISession session, string kekId)
    {
        IObjectHandle? handle = FindSingle(session, CKO.CKO_SECRET_KEY, kekId);
        if (handle is null)
        {
            return null;
        }

        List<IObjectAttribute> a = session.GetAttributeValue(handle, [CKA.CKA_KEY_TYPE, CKA.CKA_VALUE_LEN, CKA.CKA_ENCRYPT, CKA.CKA_DECRYPT]);
        if (a[0].GetValueAsUlong() != (ulong)CKK.CKK_AES || a[1].GetValueAsUlong() != HsmKeyEncryptionKey.KeySizeInBytes)
        {
            throw HsmErrors.KeyNotUsable(TokenLabel, kekId, "it is not an AES-256 key");
        }

        if (!a[2].GetValueAsBool() || !a[3].GetValueAsBool())
        {
            throw HsmErrors.KeyNotUsable(TokenLabel, kekId, "it does not allow encryption and decryption");
        }

        HsmKeyProtection protection = ReadProtection(session, handle);
        RequireProtected(kekId, "it", protection);

        return new HsmKeyEncryptionKey(this, kekId, handle);
    }

    /// <summary>Runs <paramref name="action"/> on a pooled session, mapping PKCS#11 failures to <see cref="HsmException"/>.</summary>
    /// <remarks>
    /// If the failure is because the token logged the application out (CKR_USER_NOT_LOGGED_IN, or private handles gone
    /// with the login), the pool logs in again and the action is retried once on a fresh session.
    /// </remarks>
    internal T Run<T>(string operation, Func<ISession, T> action, Func<Pkcs11Exception, HsmException?>? map = null)
    {
        ThrowIfDisposed();
        for (int attempt = 0; ; attempt++)
        {
            using SessionPool.Lease lease = _pool.Rent();
            if (TryRun(lease, operation, action, map, attempt == 0, out T result))
            {
                return result;
            }
        }
    }

    /// <summary>As <see cref="Run{T}"/>, but waits for a free session asynchronously instead of blocking a thread.</summary>
    internal async ValueTask<T> RunAsync<T>(string operation, Func<ISession, T> action, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        for (int attempt = 0; ; attempt++)
        {
            using SessionPool.Lease lease = await _pool.RentAsync(cancellationToken).ConfigureAwait(false);
            if (TryRun(lease, operation, action, null, attempt == 0, out T result))
            {
                return result;
            }
        }
    }

    private bool TryRun<T>(SessionPool.Lease lease, string operation, Func<ISession, T> action, Func<Pkcs11Exception, HsmException?>? map, bool mayRetry, out T result)
    {
        try
        {
            result = action(lease.Session);
            return true;
        }
        catch (Pkcs11Exception e)
        {
            if (SessionPool.IsSessionBroken(e.RV))
            {
                lease.MarkBroken();
            }

            bool recovered;
            try
            {
                recovered = mayRetry && _pool.TryRecoverLogin(lease.Session, e.RV);
            }
            catch (Pkcs11Exception relogin)
            {
                throw HsmErrors.FromPkcs11(relogin, ModulePath, TokenLabel, $"{operation} (logging in again)");
            }

            if (recovered)
            {
                lease.MarkBroken();
                result = default!;
                return false;
            }

            throw map?.Invoke(e) ?? HsmErrors.FromPkcs11(e, ModulePath, TokenLabel, operation);
        }
    }

    internal IObjectHandle? FindSingle(ISession session, CKO objectClass, string label)
    {
        List<IObjectHandle> found = FindByLabel(session, objectClass, label);
        return found.Count switch
        {
            0 => null,
            1 => found[0],
            _ => throw HsmErrors.DuplicateKey(TokenLabel, label, found.Count),
        };
    }

    private List<IObjectHandle> FindByLabel(ISession session, CKO objectClass, string label)
    {
        IObjectAttributeFactory af = Factories.ObjectAttributeFactory;
        return session.FindAllObjects([af.Create(CKA.CKA_CLASS, objectClass), af.Create(CKA.CKA_LABEL, label)]);
    }

    private static HsmSignatureScheme? IdentifyScheme(ISession session, IObjectHandle priv)
    {
        List<IObjectAttribute> a = session.GetAttributeValue(priv, [CKA.CKA_KEY_TYPE, CKA.CKA_EC_PARAMS]);
        if (a[0].CannotBeRead || a[1].CannotBeRead)
        {
            return null;
        }

        ulong keyType = a[0].GetValueAsUlong();
        byte[] ecParams = a[1].GetValueAsByteArray() ?? [];
        return HsmSignatureSchemes.All.FirstOrDefault(s => s.KeyType == keyType && s.MatchesParameters(ecParams));
    }

    private static HsmKeyProtection ReadProtection(ISession session, IObjectHandle key)
    {
        List<IObjectAttribute> a = session.GetAttributeValue(key, [CKA.CKA_SENSITIVE, CKA.CKA_EXTRACTABLE, CKA.CKA_ALWAYS_SENSITIVE, CKA.CKA_NEVER_EXTRACTABLE]);
        static bool Read(IObjectAttribute attribute, bool fallback) => attribute.CannotBeRead ? fallback : attribute.GetValueAsBool();
        return new HsmKeyProtection(
            Sensitive: Read(a[0], false),
            Extractable: Read(a[1], true),
            AlwaysSensitive: Read(a[2], false),
            NeverExtractable: Read(a[3], false));
    }

    /// <summary>
    /// Refuses a key that is, or ever was, readable outside the token: CKA_SENSITIVE and CKA_ALWAYS_SENSITIVE must be
    /// true, CKA_EXTRACTABLE false and CKA_NEVER_EXTRACTABLE true (PKCS#11 v2.40 section 4.9: the token sets the
    /// ALWAYS/NEVER attributes itself, so a key imported or once extractable cannot claim them).
    /// </summary>
    private void RequireProtected(string keyId, string subject, HsmKeyProtection protection)
    {
        string? problem =
            protection.Extractable ? "is extractable (CKA_EXTRACTABLE=true)"
            : !protection.Sensitive ? "is not sensitive (CKA_SENSITIVE=false)"
            : !protection.AlwaysSensitive ? "was not always sensitive (CKA_ALWAYS_SENSITIVE=false): it may have been read out before"
            : !protection.NeverExtractable ? "was extractable at some time (CKA_NEVER_EXTRACTABLE=false): it may have been exported before"
            : null;
        if (problem is not null)
        {
            throw HsmErrors.KeyNotUsable(TokenLabel, keyId, $"{subject} {problem}; Conclave requires CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE true and CKA_EXTRACTABLE false: generate a new key in the token");
        }
    }

    private void RequireMechanism((ulong Mechanism, string Name) mechanism, string purpose)
    {
        if (!_mechanisms.Contains(mechanism.Mechanism))
        {
            throw HsmErrors.UnsupportedMechanism(ModulePath, TokenLabel, mechanism.Name, purpose);
        }
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    /// <summary>Closes every session (which logs the application out of the token) and releases the module.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _pool.Dispose();
        _module.Dispose();
    }

    public override string ToString() => $"HsmToken('{TokenLabel}' in {ModulePath})";
}
