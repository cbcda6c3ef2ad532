using System.Runtime.InteropServices;

namespace Conclave.Crypto.Interop;

/// <summary>libsodium entry points (https://doc.libsodium.org). Reached only through this file.</summary>
internal static unsafe partial class Sodium
{
    private const string Lib = NativeLibraries.SodiumName;
    private static int s_initialized;

    internal static void EnsureInitialized()
    {
        if (Volatile.Read(ref s_initialized) == 1)
        {
            return;
        }

        int rc;
        try
        {
            rc = sodium_init();
        }
        catch (DllNotFoundException e)
        {
            throw new NativeLibraryMissingException("libsodium", NativeLibraries.SodiumInstall, e);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new NativeLibraryMissingException("libsodium", NativeLibraries.SodiumInstall, e);
        }

        if (rc < 0)
        {
            throw new InvalidOperationException("libsodium failed to initialize");
        }

        Volatile.Write(ref s_initialized, 1);
    }

    [LibraryImport(Lib)] internal static partial int sodium_init();
    [LibraryImport(Lib)] internal static partial IntPtr sodium_version_string();
    [LibraryImport(Lib)] internal static partial void* sodium_malloc(nuint size);
    [LibraryImport(Lib)] internal static partial void sodium_free(void* ptr);

    // ed25519 group (libsodium "Point*scalar multiplication" and "Finite field arithmetic").
    [LibraryImport(Lib)] internal static partial int crypto_core_ed25519_is_valid_point(byte* p);
    [LibraryImport(Lib)] internal static partial int crypto_core_ed25519_add(byte* r, byte* p, byte* q);
    [LibraryImport(Lib)] internal static partial int crypto_core_ed25519_sub(byte* r, byte* p, byte* q);
    [LibraryImport(Lib)] internal static partial int crypto_scalarmult_ed25519_noclamp(byte* q, byte* n, byte* p);
    [LibraryImport(Lib)] internal static partial int crypto_scalarmult_ed25519_base_noclamp(byte* q, byte* n);
    [LibraryImport(Lib)] internal static partial int crypto_core_ed25519_scalar_invert(byte* recip, byte* s);
    [LibraryImport(Lib)] internal static partial void crypto_core_ed25519_scalar_negate(byte* neg, byte* s);
    [LibraryImport(Lib)] internal static partial void crypto_core_ed25519_scalar_add(byte* z, byte* x, byte* y);
    [LibraryImport(Lib)] internal static partial void crypto_core_ed25519_scalar_sub(byte* z, byte* x, byte* y);
    [LibraryImport(Lib)] internal static partial void crypto_core_ed25519_scalar_mul(byte* z, byte* x, byte* y);
    [LibraryImport(Lib)] internal static partial void crypto_core_ed25519_scalar_reduce(byte* r, byte* s);

    // Ed25519 signatures (RFC 8032).
    [LibraryImport(Lib)] internal static partial int crypto_sign_ed25519_seed_keypair(byte* pk, byte* sk, byte* seed);
    [LibraryImport(Lib)] internal static partial int crypto_sign_ed25519_detached(byte* sig, ulong* siglen, byte* m, ulong mlen, byte* sk);
    [LibraryImport(Lib)] internal static partial int crypto_sign_ed25519_verify_detached(byte* sig, byte* m, ulong mlen, byte* pk);

    // X25519.
    [LibraryImport(Lib)] internal static partial int crypto_scalarmult_curve25519(byte* q, byte* n, byte* p);
    [LibraryImport(Lib)] internal static partial int crypto_scalarmult_curve25519_base(byte* q, byte* n);

    // XChaCha20-Poly1305 (IETF construction).
    [LibraryImport(Lib)]
    internal static partial int crypto_aead_xchacha20poly1305_ietf_encrypt(
        byte* c, ulong* clen, byte* m, ulong mlen, byte* ad, ulong adlen, byte* nsec, byte* npub, byte* k);

    [LibraryImport(Lib)]
    internal static partial int crypto_aead_xchacha20poly1305_ietf_decrypt(
        byte* m, ulong* mlen, byte* nsec, byte* c, ulong clen, byte* ad, ulong adlen, byte* npub, byte* k);

    // Argon2id.
    internal const int crypto_pwhash_ALG_ARGON2ID13 = 2;

    [LibraryImport(Lib)]
    internal static partial int crypto_pwhash(
        byte* @out, ulong outlen, byte* passwd, ulong passwdlen, byte* salt, ulong opslimit, nuint memlimit, int alg);
}
