using System.Reflection;
using System.Runtime.InteropServices;

namespace Conclave.Crypto.Interop;

/// <summary>
/// Resolves the native libraries Conclave uses and reports their status.
/// libsecp256k1 comes from the system package manager (Debian/Ubuntu: libsecp256k1-1),
/// libsodium from the NuGet package of that name (native binaries included).
/// </summary>
public static class NativeLibraries
{
    internal const string Secp256k1Name = "conclave-secp256k1";
    internal const string SodiumName = "libsodium";

    internal const string Secp256k1Install =
        "install it with 'sudo apt-get install libsecp256k1-1' (Debian/Ubuntu), 'brew install secp256k1' (macOS), " +
        "or build it from bitcoin-core/secp256k1 with --enable-module-recovery --enable-module-schnorrsig --enable-module-extrakeys --enable-module-ecdh";

    internal const string SodiumInstall =
        "it ships in the 'libsodium' NuGet package; restore the solution, or install the system package (libsodium23)";

    private static readonly string[] Secp256k1Candidates =
    [
        "libsecp256k1.so.2", "libsecp256k1.so.1", "libsecp256k1.so", "libsecp256k1.dylib", "libsecp256k1.2.dylib", "libsecp256k1.dll", "secp256k1",
    ];

    private static int s_registered;
    private static string? s_secp256k1Path;

    /// <summary>The file libsecp256k1 was loaded from, once loaded.</summary>
    public static string? Secp256k1LoadedFrom => s_secp256k1Path;

    internal static void EnsureResolver()
    {
        if (Interlocked.Exchange(ref s_registered, 1) == 0)
        {
            try
            {
                NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
            }
            catch (InvalidOperationException)
            {
                // A resolver is already set for this assembly; nothing to do.
            }
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != Secp256k1Name)
        {
            return IntPtr.Zero;
        }

        foreach (string candidate in Secp256k1Candidates)
        {
            if (NativeLibrary.TryLoad(candidate, assembly, searchPath, out IntPtr handle))
            {
                s_secp256k1Path = candidate;
                return handle;
            }
        }

        throw new NativeLibraryMissingException("libsecp256k1", Secp256k1Install);
    }

    /// <summary>
    /// Loads both native libraries and returns a one-line description of each.
    /// Throws <see cref="NativeLibraryMissingException"/> naming the missing library.
    /// </summary>
    public static IReadOnlyList<string> Describe()
    {
        Secp256k1.Secp256k1Context.EnsureLoaded();
        Sodium.EnsureInitialized();
        string sodiumVersion = Marshal.PtrToStringUTF8(Sodium.sodium_version_string()) ?? "unknown";
        return
        [
            $"libsecp256k1 loaded from {s_secp256k1Path ?? "default search path"} (selftest passed, context randomized)",
            $"libsodium {sodiumVersion}",
        ];
    }
}
