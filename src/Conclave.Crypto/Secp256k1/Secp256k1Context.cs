using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Conclave.Crypto.Interop;
using static Conclave.Crypto.Interop.Secp256k1Native;

namespace Conclave.Crypto.Secp256k1;

/// <summary>A libsecp256k1 context, owned by a SafeHandle so it is destroyed exactly once.</summary>
internal sealed class Secp256k1ContextHandle : SafeHandle
{
    public Secp256k1ContextHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    internal void Set(IntPtr value) => SetHandle(value);

    protected override bool ReleaseHandle()
    {
        secp256k1_context_destroy(handle);
        return true;
    }
}

/// <summary>
/// The process-wide libsecp256k1 context: created once, self-tested, and randomized with 32 bytes
/// from the OS generator (side-channel blinding, secp256k1.h secp256k1_context_randomize).
/// libsecp256k1 contexts are safe to share across threads for every call except randomize.
/// </summary>
internal static class Secp256k1Context
{
    private static readonly Lazy<Secp256k1ContextHandle> s_context = new(Create, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The raw context pointer; valid for the life of the process.</summary>
    internal static IntPtr Ptr => s_context.Value.DangerousGetHandle();

    internal static void EnsureLoaded() => _ = s_context.Value;

    private static unsafe Secp256k1ContextHandle Create()
    {
        NativeLibraries.EnsureResolver();
        var handle = new Secp256k1ContextHandle();
        IntPtr ctx;
        try
        {
            secp256k1_selftest();
            ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
        }
        catch (DllNotFoundException e)
        {
            throw new NativeLibraryMissingException("libsecp256k1", NativeLibraries.Secp256k1Install, e);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new NativeLibraryMissingException("libsecp256k1 (with the recovery, schnorrsig, extrakeys and ecdh modules)", NativeLibraries.Secp256k1Install, e);
        }

        if (ctx == IntPtr.Zero)
        {
            throw new InvalidOperationException("libsecp256k1 context creation failed");
        }

        handle.Set(ctx);
        Span<byte> seed = stackalloc byte[32];
        RandomNumberGenerator.Fill(seed);
        try
        {
            fixed (byte* s = seed)
            {
                if (secp256k1_context_randomize(ctx, s) != 1)
                {
                    throw new InvalidOperationException("libsecp256k1 context randomization failed");
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }

        return handle;
    }
}
