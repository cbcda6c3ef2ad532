namespace Conclave.Crypto.Interop;

/// <summary>
/// Thrown once, clearly, when a native library Conclave needs cannot be loaded.
/// The message names the library and how to install it.
/// </summary>
public sealed class NativeLibraryMissingException : Exception
{
    public NativeLibraryMissingException(string library, string howToInstall, Exception? inner = null)
        : base($"native library '{library}' could not be loaded; {howToInstall}", inner)
    {
        Library = library;
        HowToInstall = howToInstall;
    }

    public NativeLibraryMissingException() : this("unknown", "see README.md") { }

    public NativeLibraryMissingException(string message) : base(message)
    {
        Library = "unknown";
        HowToInstall = "see README.md";
    }

    public NativeLibraryMissingException(string message, Exception innerException) : base(message, innerException)
    {
        Library = "unknown";
        HowToInstall = "see README.md";
    }

    public string Library { get; } = "unknown";

    public string HowToInstall { get; } = "see README.md";
}
