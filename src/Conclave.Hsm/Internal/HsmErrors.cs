using Net.Pkcs11Interop.Common;

namespace Conclave.Hsm.Internal;

/// <summary>Every <see cref="HsmException"/> is built here: messages name places and codes, never a PIN or key bytes.</summary>
internal static class HsmErrors
{
    internal static HsmException InvalidConfiguration(string message)
        => new(HsmErrorKind.InvalidConfiguration, $"HSM configuration: {message}");

    internal static HsmException PinUnavailable(string message)
        => new(HsmErrorKind.PinUnavailable, $"HSM PIN: {message}");

    internal static HsmException ModuleNotFound(string modulePath)
        => new(HsmErrorKind.ModuleNotFound,
            $"PKCS#11 module not found: {modulePath} (install the HSM vendor's PKCS#11 library; for SoftHSM2: apt-get install softhsm2)");

    internal static HsmException ModuleLoadFailed(string modulePath, Exception inner)
        => new(HsmErrorKind.ModuleLoadFailed, $"could not load {modulePath} as a PKCS#11 module: {inner.Message}", inner);

    internal static HsmException TokenNotFound(string modulePath, string tokenLabel, IReadOnlyCollection<string> present)
        => new(HsmErrorKind.TokenNotFound,
            $"no initialised token labelled '{tokenLabel}' in PKCS#11 module {modulePath}"
            + (present.Count == 0 ? " (the module shows no initialised token)" : $" (tokens present: {string.Join(", ", present.Select(p => $"'{p}'"))})"));

    internal static HsmException AmbiguousToken(string modulePath, string tokenLabel, int count)
        => new(HsmErrorKind.InvalidConfiguration, $"{count} tokens are labelled '{tokenLabel}' in PKCS#11 module {modulePath}; relabel them so the label is unique");

    internal static HsmException WrongPin(string modulePath, string tokenLabel, CKR rv, Exception inner)
        => new(HsmErrorKind.WrongPin, $"the PIN was refused by token '{tokenLabel}' in {modulePath} ({rv})", inner) { ReturnCode = rv.ToString() };

    internal static HsmException PinLocked(string modulePath, string tokenLabel, string reason)
        => new(HsmErrorKind.PinLocked, $"the user PIN of token '{tokenLabel}' in {modulePath} is {reason}; the security officer must reset it");

    internal static HsmException UnsupportedMechanism(string modulePath, string tokenLabel, string mechanism, string purpose, CKR? rv = null, Exception? inner = null)
        => new(HsmErrorKind.UnsupportedMechanism,
            $"token '{tokenLabel}' in {modulePath} does not support {mechanism} (needed for {purpose})" + (rv is null ? string.Empty : $" ({rv})"), inner)
        { ReturnCode = rv?.ToString() };

    internal static HsmException KeyNotFound(string tokenLabel, string keyId, string what)
        => new(HsmErrorKind.KeyNotFound, $"no {what} with id '{keyId}' on token '{tokenLabel}'");

    internal static HsmException KeyExists(string tokenLabel, string keyId)
        => new(HsmErrorKind.KeyExists, $"a key with id '{keyId}' already exists on token '{tokenLabel}'");

    internal static HsmException KeyNotUsable(string tokenLabel, string keyId, string reason)
        => new(HsmErrorKind.KeyNotUsable, $"key '{keyId}' on token '{tokenLabel}' cannot be used: {reason}");

    internal static HsmException DuplicateKey(string tokenLabel, string keyId, int count)
        => new(HsmErrorKind.KeyNotUsable, $"{count} objects on token '{tokenLabel}' carry the id '{keyId}'; remove the duplicates");

    internal static HsmException WrappedKeyInvalid(string kekId, string reason, CKR? rv = null, Exception? inner = null)
        => new(HsmErrorKind.WrappedKeyInvalid,
            $"the wrapped data key cannot be unwrapped with KEK '{kekId}': {reason}" + (rv is null ? string.Empty : $" ({rv})"), inner)
        { ReturnCode = rv?.ToString() };

    internal static HsmException SessionPoolExhausted(string tokenLabel, int size, TimeSpan timeout)
        => new(HsmErrorKind.SessionPoolExhausted,
            $"all {size} sessions to token '{tokenLabel}' stayed busy for {timeout.TotalSeconds:0.#} s; raise the session pool size or lower the load");

    internal static HsmException BadSignature(string tokenLabel, string keyId, string scheme)
        => new(HsmErrorKind.DeviceError,
            $"token '{tokenLabel}' returned a {scheme} signature for key '{keyId}' that does not verify against the key's public key; the signature was discarded");

    internal static HsmException Device(string tokenLabel, string operation, string message)
        => new(HsmErrorKind.DeviceError, $"{operation} on token '{tokenLabel}' failed: {message}");

    /// <summary>Maps a PKCS#11 failure of <paramref name="operation"/> to a typed exception.</summary>
    internal static HsmException FromPkcs11(Pkcs11Exception e, string modulePath, string tokenLabel, string operation)
    {
        CKR rv = e.RV;
        return rv switch
        {
            CKR.CKR_PIN_INCORRECT or CKR.CKR_PIN_LEN_RANGE or CKR.CKR_PIN_INVALID => WrongPin(modulePath, tokenLabel, rv, e),
            CKR.CKR_PIN_LOCKED => PinLocked(modulePath, tokenLabel, "locked"),
            CKR.CKR_PIN_EXPIRED => PinLocked(modulePath, tokenLabel, "expired"),
            CKR.CKR_MECHANISM_INVALID or CKR.CKR_MECHANISM_PARAM_INVALID or CKR.CKR_CURVE_NOT_SUPPORTED
                or CKR.CKR_DOMAIN_PARAMS_INVALID or CKR.CKR_KEY_TYPE_INCONSISTENT or CKR.CKR_FUNCTION_NOT_SUPPORTED
                => UnsupportedMechanism(modulePath, tokenLabel, operation, operation, rv, e),
            CKR.CKR_TOKEN_NOT_PRESENT or CKR.CKR_DEVICE_REMOVED or CKR.CKR_TOKEN_NOT_RECOGNIZED or CKR.CKR_SLOT_ID_INVALID
                => new HsmException(HsmErrorKind.TokenNotFound, $"token '{tokenLabel}' in {modulePath} is no longer present ({rv}) during {operation}", e) { ReturnCode = rv.ToString() },
            _ => new HsmException(HsmErrorKind.DeviceError, $"{operation} on token '{tokenLabel}' in {modulePath} failed ({rv})", e) { ReturnCode = rv.ToString() },
        };
    }
}
