using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Signing;
using Conclave.Hsm;
using Conclave.Hsm.Schemes;

namespace Conclave.Benchmarks.Hsm;

/// <summary>
/// Signing inside a PKCS#11 token (SoftHSM2 in CI and on developer machines) next to the same schemes in software,
/// single-threaded latency and 8-thread throughput, plus KEK wrap and unwrap. Needs the SoftHSM2 token of
/// scripts/test-services/softhsm.sh:
/// <code>
/// eval "$(bash scripts/test-services/softhsm.sh)"
/// dotnet run -c Release --project bench/Conclave.Benchmarks -- --job short \
///   --filter '*HsmSigningBenchmarks*' '*SingleKeySigningBenchmarks.EcdsaSign*'
/// </code>
/// Point CONCLAVE_TEST_HSM_MODULE / _TOKEN / _PIN_FILE at a real HSM to measure it instead (keys named
/// bench-* are created and deleted).
/// </summary>
[MemoryDiagnoser]
public class HsmSigningBenchmarks
{
    private const int Threads = 8;
    private const int PerThread = 64;

    private readonly byte[] _message = RandomNumberGenerator.GetBytes(64);
    private byte[] _digest = [];
    private HsmToken _token = null!;
    private HsmSigningKey _ecdsa = null!, _ed25519 = null!;
    private SoftwareSigningKey _softEd25519 = null!;
    private HsmKeyEncryptionKey _kek = null!;
    private readonly byte[] _dataKey = RandomNumberGenerator.GetBytes(32);
    private byte[] _wrapped = [];
    private string _suffix = string.Empty;

    [GlobalSetup]
    public void Setup()
    {
        string Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v
            : throw new InvalidOperationException($"{name} is not set: run eval \"$(bash scripts/test-services/softhsm.sh)\" first");
        _token = HsmToken.Open(new HsmOptions
        {
            ModulePath = Env("CONCLAVE_TEST_HSM_MODULE"),
            TokenLabel = Env("CONCLAVE_TEST_HSM_TOKEN"),
            PinFile = Env("CONCLAVE_TEST_HSM_PIN_FILE"),
            SessionPoolSize = Threads,
        });
        _suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        _ecdsa = _token.GenerateKey(HsmSignatureSchemes.EcdsaSecp256k1, $"bench-ecdsa-{_suffix}");
        _ed25519 = _token.GenerateKey(HsmSignatureSchemes.Ed25519, $"bench-ed25519-{_suffix}");
        _kek = _token.CreateKeyEncryptionKey($"bench-kek-{_suffix}");
        _wrapped = _kek.Wrap(_dataKey);
        _softEd25519 = SignatureSchemes.Ed25519.GenerateKey();
        _digest = SHA256.HashData(_message);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ = _token.DeleteKey(_ecdsa.Id);
        _ = _token.DeleteKey(_ed25519.Id);
        _ = _token.DeleteKeyEncryptionKey(_kek.Id);
        _softEd25519.Dispose();
        _token.Dispose();
    }

    [Benchmark(Description = "hsm-ecdsa-secp256k1 sign (C_Sign + low-S + recovery id)")]
    public byte[] HsmEcdsaSign() => _ecdsa.Sign(_digest).Signature;

    [Benchmark(Description = "hsm-ed25519 sign (C_Sign + strict verify)")]
    public byte[] HsmEd25519Sign() => _ed25519.Sign(_message).Signature;

    [Benchmark(Description = "ed25519 sign, software (libsodium)")]
    public byte[] SoftwareEd25519Sign() => _softEd25519.Sign(_message).Signature;

    [Benchmark(OperationsPerInvoke = Threads * PerThread, Description = "hsm-ecdsa-secp256k1 sign, 8 threads (per signature)")]
    public void HsmEcdsaSign8Threads() => RunOnThreads(() => _ecdsa.Sign(_digest));

    [Benchmark(OperationsPerInvoke = Threads * PerThread, Description = "hsm-ed25519 sign, 8 threads (per signature)")]
    public void HsmEd25519Sign8Threads() => RunOnThreads(() => _ed25519.Sign(_message));

    [Benchmark(Description = "KEK wrap 32-byte data key (CKM_AES_GCM)")]
    public byte[] KekWrap() => _kek.Wrap(_dataKey);

    [Benchmark(Description = "KEK unwrap 32-byte data key (CKM_AES_GCM)")]
    public int KekUnwrap()
    {
        using SecretBuffer key = _kek.Unwrap(_wrapped);
        return key.Length;
    }

    private static void RunOnThreads(Action sign)
    {
        var threads = new Thread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            threads[t] = new Thread(() =>
            {
                for (int i = 0; i < PerThread; i++)
                {
                    sign();
                }
            });
            threads[t].Start();
        }

        foreach (Thread t in threads)
        {
            t.Join();
        }
    }
}
