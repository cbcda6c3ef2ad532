using Conclave.Hsm.Internal;

namespace Conclave.Hsm;

/// <summary>
/// How to reach a PKCS#11 token: the module (the vendor's shared library), the token label, and where the user PIN
/// comes from. The PIN itself is never part of the options: it is read from a file or an environment variable when
/// the token is opened, used to log in, and zeroed (docs/HSM.md). Binds from the <c>"hsm"</c> section of the node
/// and server configuration files (property names in camelCase in JSON).
/// </summary>
public sealed class HsmOptions
{
    /// <summary>The default number of pooled sessions.</summary>
    public const int DefaultSessionPoolSize = 8;

    /// <summary>The largest session pool accepted.</summary>
    public const int MaxSessionPoolSize = 256;

    /// <summary>The environment variable the CLI reads the PIN from when no PIN file is given.</summary>
    public const string DefaultPinEnvironmentVariable = "CONCLAVE_HSM_PIN";

    /// <summary>Path of the PKCS#11 module, for example <c>/usr/lib/softhsm/libsofthsm2.so</c>.</summary>
    public string ModulePath { get; init; } = string.Empty;

    /// <summary>Label of the token (CK_TOKEN_INFO.label, trailing blanks ignored).</summary>
    public string TokenLabel { get; init; } = string.Empty;

    /// <summary>A file holding the user PIN (one line; a trailing newline is ignored). It must not be readable by others.</summary>
    public string? PinFile { get; init; }

    /// <summary>The name of an environment variable holding the user PIN (not the PIN itself).</summary>
    public string? PinEnvironmentVariable { get; init; }

    /// <summary>How many logged-in read/write sessions may be open at once; each concurrent operation holds one.</summary>
    public int SessionPoolSize { get; init; } = DefaultSessionPoolSize;

    /// <summary>How long an operation waits for a free session before failing with <see cref="HsmErrorKind.SessionPoolExhausted"/>.</summary>
    public TimeSpan SessionAcquireTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Checks the options; throws <see cref="HsmException"/> (<see cref="HsmErrorKind.InvalidConfiguration"/>) naming the first problem.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ModulePath))
        {
            throw HsmErrors.InvalidConfiguration("the PKCS#11 module path is required (modulePath, --hsm-module)");
        }

        if (string.IsNullOrWhiteSpace(TokenLabel))
        {
            throw HsmErrors.InvalidConfiguration("the token label is required (tokenLabel, --hsm-token)");
        }

        if (TokenLabel.Length > 32)
        {
            throw HsmErrors.InvalidConfiguration($"the token label must be at most 32 characters (PKCS#11 CK_TOKEN_INFO.label), got {TokenLabel.Length}");
        }

        bool hasFile = !string.IsNullOrWhiteSpace(PinFile);
        bool hasEnv = !string.IsNullOrWhiteSpace(PinEnvironmentVariable);
        if (hasFile == hasEnv)
        {
            throw HsmErrors.InvalidConfiguration(hasFile
                ? "give the PIN either as a file (pinFile, --hsm-pin-file) or as an environment variable (pinEnvironmentVariable), not both"
                : "the PIN source is required: a file (pinFile, --hsm-pin-file) or the name of an environment variable (pinEnvironmentVariable)");
        }

        if (SessionPoolSize is < 1 or > MaxSessionPoolSize)
        {
            throw HsmErrors.InvalidConfiguration($"sessionPoolSize must be between 1 and {MaxSessionPoolSize}, got {SessionPoolSize}");
        }

        if (SessionAcquireTimeout <= TimeSpan.Zero)
        {
            throw HsmErrors.InvalidConfiguration("sessionAcquireTimeout must be positive");
        }
    }

    /// <summary>A description for logs: module, token, PIN source and pool size; never the PIN.</summary>
    public override string ToString()
        => $"HsmOptions(module {ModulePath}, token '{TokenLabel}', PIN from {(PinFile is not null ? $"file {PinFile}" : $"${PinEnvironmentVariable}")}, {SessionPoolSize} sessions)";
}
