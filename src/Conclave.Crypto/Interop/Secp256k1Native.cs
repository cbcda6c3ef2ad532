using System.Runtime.InteropServices;

namespace Conclave.Crypto.Interop;

/// <summary>
/// libsecp256k1 entry points (include/secp256k1*.h of bitcoin-core/secp256k1 v0.2+).
/// Opaque structures are passed as byte buffers of their documented sizes.
/// </summary>
internal static unsafe partial class Secp256k1Native
{
    private const string Lib = NativeLibraries.Secp256k1Name;

    internal const uint SECP256K1_FLAGS_TYPE_CONTEXT = 1u << 0;
    internal const uint SECP256K1_FLAGS_BIT_CONTEXT_SIGN = 1u << 9;
    internal const uint SECP256K1_FLAGS_BIT_CONTEXT_VERIFY = 1u << 8;
    internal const uint SECP256K1_CONTEXT_NONE = SECP256K1_FLAGS_TYPE_CONTEXT;
    internal const uint SECP256K1_FLAGS_TYPE_COMPRESSION = 1u << 1;
    internal const uint SECP256K1_FLAGS_BIT_COMPRESSION = 1u << 8;
    internal const uint SECP256K1_EC_COMPRESSED = SECP256K1_FLAGS_TYPE_COMPRESSION | SECP256K1_FLAGS_BIT_COMPRESSION;
    internal const uint SECP256K1_EC_UNCOMPRESSED = SECP256K1_FLAGS_TYPE_COMPRESSION;

    internal const int PubkeySize = 64;      // secp256k1_pubkey
    internal const int SignatureSize = 64;   // secp256k1_ecdsa_signature
    internal const int RecoverableSize = 65; // secp256k1_ecdsa_recoverable_signature
    internal const int XonlySize = 64;       // secp256k1_xonly_pubkey
    internal const int KeypairSize = 96;     // secp256k1_keypair

    [LibraryImport(Lib)] internal static partial IntPtr secp256k1_context_create(uint flags);
    [LibraryImport(Lib)] internal static partial void secp256k1_context_destroy(IntPtr ctx);
    [LibraryImport(Lib)] internal static partial int secp256k1_context_randomize(IntPtr ctx, byte* seed32);
    [LibraryImport(Lib)] internal static partial void secp256k1_selftest();

    [LibraryImport(Lib)] internal static partial int secp256k1_ec_seckey_verify(IntPtr ctx, byte* seckey);
    [LibraryImport(Lib)] internal static partial int secp256k1_ec_pubkey_create(IntPtr ctx, byte* pubkey, byte* seckey);
    [LibraryImport(Lib)] internal static partial int secp256k1_ec_pubkey_parse(IntPtr ctx, byte* pubkey, byte* input, nuint inputlen);
    [LibraryImport(Lib)] internal static partial int secp256k1_ec_pubkey_serialize(IntPtr ctx, byte* output, nuint* outputlen, byte* pubkey, uint flags);
    [LibraryImport(Lib)] internal static partial int secp256k1_ec_pubkey_negate(IntPtr ctx, byte* pubkey);
    [LibraryImport(Lib)] internal static partial int secp256k1_ec_pubkey_tweak_add(IntPtr ctx, byte* pubkey, byte* tweak32);
    [LibraryImport(Lib)] internal static partial int secp256k1_ec_pubkey_tweak_mul(IntPtr ctx, byte* pubkey, byte* tweak32);
    [LibraryImport(Lib)] internal static partial int secp256k1_ec_pubkey_combine(IntPtr ctx, byte* @out, byte** ins, nuint n);

    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_sign(IntPtr ctx, byte* sig, byte* msghash32, byte* seckey, IntPtr noncefp, byte* ndata);
    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_verify(IntPtr ctx, byte* sig, byte* msghash32, byte* pubkey);
    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_signature_normalize(IntPtr ctx, byte* sigout, byte* sigin);
    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_signature_parse_compact(IntPtr ctx, byte* sig, byte* input64);
    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_signature_serialize_compact(IntPtr ctx, byte* output64, byte* sig);
    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_signature_parse_der(IntPtr ctx, byte* sig, byte* input, nuint inputlen);
    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_signature_serialize_der(IntPtr ctx, byte* output, nuint* outputlen, byte* sig);

    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_sign_recoverable(IntPtr ctx, byte* sig, byte* msghash32, byte* seckey, IntPtr noncefp, byte* ndata);
    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_recoverable_signature_serialize_compact(IntPtr ctx, byte* output64, int* recid, byte* sig);
    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_recoverable_signature_parse_compact(IntPtr ctx, byte* sig, byte* input64, int recid);
    [LibraryImport(Lib)] internal static partial int secp256k1_ecdsa_recover(IntPtr ctx, byte* pubkey, byte* sig, byte* msghash32);

    [LibraryImport(Lib)] internal static partial int secp256k1_keypair_create(IntPtr ctx, byte* keypair, byte* seckey);
    [LibraryImport(Lib)] internal static partial int secp256k1_keypair_xonly_pub(IntPtr ctx, byte* pubkey, int* pkParity, byte* keypair);
    [LibraryImport(Lib)] internal static partial int secp256k1_xonly_pubkey_parse(IntPtr ctx, byte* pubkey, byte* input32);
    [LibraryImport(Lib)] internal static partial int secp256k1_xonly_pubkey_serialize(IntPtr ctx, byte* output32, byte* pubkey);
    [LibraryImport(Lib)] internal static partial int secp256k1_schnorrsig_sign32(IntPtr ctx, byte* sig64, byte* msg32, byte* keypair, byte* auxRand32);
    [LibraryImport(Lib)] internal static partial int secp256k1_schnorrsig_sign_custom(IntPtr ctx, byte* sig64, byte* msg, nuint msglen, byte* keypair, byte* extraparams);
    [LibraryImport(Lib)] internal static partial int secp256k1_schnorrsig_verify(IntPtr ctx, byte* sig64, byte* msg, nuint msglen, byte* pubkey);

    [LibraryImport(Lib)] internal static partial int secp256k1_ecdh(IntPtr ctx, byte* output, byte* pubkey, byte* seckey, IntPtr hashfp, byte* data);
}
