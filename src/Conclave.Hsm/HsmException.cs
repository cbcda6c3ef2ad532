namespace Conclave.Hsm;

/// <summary>What went wrong with an HSM, so callers (and the CLI) can react without parsing messages.</summary>
public enum HsmErrorKind
{
    /// <summary>The options are incomplete or contradictory (for example both a PIN file and a PIN variable).</summary>
    InvalidConfiguration,

    /// <summary>The PIN could not be read: the file or environment variable is missing, empty or too open.</summary>
    PinUnavailable,

    /// <summary>The PKCS#11 module file does not exist.</summary>
    ModuleNotFound,

    /// <summary>The file exists but is not a loadable PKCS#11 module (no <c>C_GetFunctionList</c>, wrong architecture).</summary>
    ModuleLoadFailed,

    /// <summary>No initialised token with the configured label is present in the module.</summary>
    TokenNotFound,

    /// <summary>The token refused the PIN (<c>CKR_PIN_INCORRECT</c>, <c>CKR_PIN_LEN_RANGE</c>).</summary>
    WrongPin,

    /// <summary>The token's user PIN is locked or expired (<c>CKR_PIN_LOCKED</c>, <c>CKR_PIN_EXPIRED</c>).</summary>
    PinLocked,

    /// <summary>The token does not offer a mechanism or curve a scheme needs.</summary>
    UnsupportedMechanism,

    /// <summary>No key with the given id is on the token.</summary>
    KeyNotFound,

    /// <summary>A key with the given id already exists on the token.</summary>
    KeyExists,

    /// <summary>A key exists but is not protected as Conclave requires (extractable, or not sensitive), or has the wrong type.</summary>
    KeyNotUsable,

    /// <summary>A wrapped data key failed authentication: it was altered, truncated, or wrapped under another key.</summary>
    WrappedKeyInvalid,

    /// <summary>Every session of the pool stayed busy for the whole acquire timeout.</summary>
    SessionPoolExhausted,

    /// <summary>The token or module returned an error not covered above; the message names the function and the CKR code.</summary>
    DeviceError,
}

/// <summary>
/// An HSM operation failed. Messages name the module, token, key id, mechanism and PKCS#11 return code, never a PIN
/// or key material (CONVENTIONS.md secret-handling rule 3). All instances are built in <c>Internal/HsmErrors</c>.
/// </summary>
public sealed class HsmException : Exception
{
    public HsmException() : base("HSM operation failed") { Kind = HsmErrorKind.DeviceError; }

    public HsmException(string message) : base(message) { Kind = HsmErrorKind.DeviceError; }

    public HsmException(string message, Exception innerException) : base(message, innerException) { Kind = HsmErrorKind.DeviceError; }

    public HsmException(HsmErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
    }

    /// <summary>The category of the failure.</summary>
    public HsmErrorKind Kind { get; }

    /// <summary>The PKCS#11 return code name (for example <c>CKR_PIN_INCORRECT</c>), when the failure came from the token.</summary>
    public string? ReturnCode { get; init; }
}
