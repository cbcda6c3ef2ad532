using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Conclave.Crypto.Signing;

namespace Conclave.Benchmarks.Crypto;

/// <summary>
/// Sign and verify per single-key scheme, with .NET's built-in ECDsa on secp256k1 (OpenSSL) as the comparison row.
/// libsecp256k1 signing should take tens of microseconds; over 100 µs means the interop path is wrong.
/// </summary>
[MemoryDiagnoser]
public class SingleKeySigningBenchmarks
{
    private readonly byte[] _message = RandomNumberGenerator.GetBytes(64);
    private byte[] _digest = [];
    private SoftwareSigningKey _ecdsa = null!, _schnorr = null!, _ed25519 = null!;
    private byte[] _ecdsaSig = [], _schnorrSig = [], _edSig = [];
    private ECDsa _dotnet = null!;
    private byte[] _dotnetSig = [];

    [GlobalSetup]
    public void Setup()
    {
        _digest = SHA256.HashData(_message);
        _ecdsa = SignatureSchemes.EcdsaSecp256k1.GenerateKey();
        _schnorr = SignatureSchemes.SchnorrBip340.GenerateKey();
        _ed25519 = SignatureSchemes.Ed25519.GenerateKey();
        _ecdsaSig = _ecdsa.Sign(_digest).Signature;
        _schnorrSig = _schnorr.Sign(_message).Signature;
        _edSig = _ed25519.Sign(_message).Signature;
        _dotnet = ECDsa.Create(ECCurve.CreateFromFriendlyName("secP256k1"));
        _dotnetSig = _dotnet.SignHash(_digest);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ecdsa.Dispose();
        _schnorr.Dispose();
        _ed25519.Dispose();
        _dotnet.Dispose();
    }

    [Benchmark(Baseline = true, Description = "ecdsa-secp256k1 sign (libsecp256k1)")]
    public byte[] EcdsaSign() => _ecdsa.Sign(_digest).Signature;

    [Benchmark(Description = "ecdsa-secp256k1 verify (libsecp256k1)")]
    public bool EcdsaVerify() => SignatureSchemes.EcdsaSecp256k1.Verify(_ecdsa.PublicKey.Span, _digest, _ecdsaSig);

    [Benchmark(Description = "schnorr-bip340 sign")]
    public byte[] SchnorrSign() => _schnorr.Sign(_message).Signature;

    [Benchmark(Description = "schnorr-bip340 verify")]
    public bool SchnorrVerify() => SignatureSchemes.SchnorrBip340.Verify(_schnorr.PublicKey.Span, _message, _schnorrSig);

    [Benchmark(Description = "ed25519 sign (libsodium)")]
    public byte[] Ed25519Sign() => _ed25519.Sign(_message).Signature;

    [Benchmark(Description = "ed25519 verify (strict)")]
    public bool Ed25519Verify() => SignatureSchemes.Ed25519.Verify(_ed25519.PublicKey.Span, _message, _edSig);

    [Benchmark(Description = ".NET ECDsa secp256k1 sign (OpenSSL)")]
    public byte[] DotnetSign() => _dotnet.SignHash(_digest);

    [Benchmark(Description = ".NET ECDsa secp256k1 verify (OpenSSL)")]
    public bool DotnetVerify() => _dotnet.VerifyHash(_digest, _dotnetSig);
}
