using System.Reflection;
using System.Runtime.InteropServices;
using Conclave.Hsm.Internal;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace Conclave.Hsm.Interop;

/// <summary>
/// A reference-counted PKCS#11 module per process. PKCS#11 allows one <c>C_Initialize</c> per application and
/// <c>C_Finalize</c> ends it for every user (PKCS#11 v2.40 base spec section 5.4), so every <see cref="HsmToken"/>
/// of a module shares one loaded library; the last lease to go finalizes and unloads it.
/// </summary>
internal sealed class Pkcs11Module : IDisposable
{
    private static readonly Lock s_lock = new();
    private static readonly Dictionary<string, Entry> s_loaded = new(StringComparer.Ordinal);
    private static int s_resolverInstalled;

    private readonly Entry _entry;
    private int _disposed;

    private Pkcs11Module(Entry entry)
    {
        _entry = entry;
    }

    internal string Path => _entry.Path;

    internal IPkcs11Library Library => _entry.Library;

    internal Pkcs11InteropFactories Factories => _entry.Factories;

    /// <summary>Loads (or shares) the module at <paramref name="modulePath"/> and initializes it for multi-threaded use.</summary>
    internal static Pkcs11Module Acquire(string modulePath)
    {
        string path = System.IO.Path.GetFullPath(modulePath);
        if (!File.Exists(path))
        {
            throw HsmErrors.ModuleNotFound(path);
        }

        InstallResolver();
        lock (s_lock)
        {
            if (!s_loaded.TryGetValue(path, out Entry? entry))
            {
                var factories = new Pkcs11InteropFactories();
                IPkcs11Library library;
                try
                {
                    // MultiThreaded: C_Initialize with CKF_OS_LOCKING_OK, so sessions may be used from several threads.
                    library = factories.Pkcs11LibraryFactory.LoadPkcs11Library(factories, path, AppType.MultiThreaded);
                }
                catch (UnmanagedException e)
                {
                    throw HsmErrors.ModuleLoadFailed(path, e);
                }
                catch (Pkcs11Exception e)
                {
                    throw new HsmException(HsmErrorKind.ModuleLoadFailed, $"C_Initialize of PKCS#11 module {path} failed ({e.RV})", e) { ReturnCode = e.RV.ToString() };
                }

                entry = new Entry(path, factories, library);
                s_loaded.Add(path, entry);
            }

            entry.References++;
            return new Pkcs11Module(entry);
        }
    }

    /// <summary>Whether a module is currently loaded in this process (tests use it to prove a real restart).</summary>
    internal static bool IsLoaded(string modulePath)
    {
        lock (s_lock)
        {
            return s_loaded.ContainsKey(System.IO.Path.GetFullPath(modulePath));
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        lock (s_lock)
        {
            _entry.References--;
            if (_entry.References == 0)
            {
                _ = s_loaded.Remove(_entry.Path);
                _entry.Library.Dispose(); // C_Finalize, then unload.
            }
        }
    }

    /// <summary>
    /// Pkcs11Interop 5 imports dlopen from "libdl"; glibc 2.34+ ships it as libdl.so.2 (and in libc) with no
    /// unversioned libdl.so unless libc6-dev is installed. Map the name, as the Pkcs11Interop maintainer advises
    /// (Pkcs11Interop issue 239), so no development package is needed at run time.
    /// </summary>
    private static void InstallResolver()
    {
        if (!OperatingSystem.IsLinux() || Interlocked.Exchange(ref s_resolverInstalled, 1) != 0)
        {
            return;
        }

        try
        {
            NativeLibrary.SetDllImportResolver(typeof(Pkcs11InteropFactories).Assembly, ResolveLibdl);
        }
        catch (InvalidOperationException)
        {
            // Someone else already set a resolver for Pkcs11Interop; theirs stays in charge.
        }
    }

    private static IntPtr ResolveLibdl(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != "libdl")
        {
            return IntPtr.Zero;
        }

        foreach (string candidate in (ReadOnlySpan<string>)["libdl.so.2", "libc.so.6", "libdl.so"])
        {
            if (NativeLibrary.TryLoad(candidate, out IntPtr handle))
            {
                return handle;
            }
        }

        return IntPtr.Zero;
    }

    private sealed class Entry(string path, Pkcs11InteropFactories factories, IPkcs11Library library)
    {
        public string Path { get; } = path;

        public Pkcs11InteropFactories Factories { get; } = factories;

        public IPkcs11Library Library { get; } = library;

        public int References { get; set; }
    }
}
