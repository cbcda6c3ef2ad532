using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Signing;
using Conclave.PostQuantum;
using Conclave.PostQuantum.Internal;
using Org.BouncyCastle.Crypto.Parameters;

namespace Conclave.Benchmarks.PostQuantum;

/// <summary>
/// Key generation, signing and verification per post-quantum parameter set and hybrid (Conclave.PostQuantum on
/// BouncyCastle). KeyGen includes the guarded-memory key object and public-key derivation; Sign starts from the stored
/// seed (ML-DSA expands ξ, SLH-DSA rebuilds PK.root) and is hedged. Baseline in the same run:
/// SingleKeySigningBenchmarks.EcdsaSign.
/// </summary>
[MemoryDiagnoser]
public class PostQuantumBenchmarks
{
    private readonly byte[] _message = RandomNumberGenerator.GetBytes(64);
    private SoftwareSignatureScheme _scheme = null!;
    private SoftwareSigningKey _key = null!;
    private byte[] _publicKey = [];
    private byte[] _signature = [];

    [ParamsSource(nameof(Schemes))]
    public string Scheme { get; set; } = "";

    public static IEnumerable<string> Schemes =>
    [
        "ml-dsa-44", "ml-dsa-65", "ml-dsa-87", "slh-dsa-sha2-128s", "slh-dsa-shake-128f",
        "hybrid-ed25519-ml-dsa-65", "hybrid-ecdsa-ml-dsa-65",
    ];

    [GlobalSetup]
    public void Setup()
    {
        _scheme = PostQuantumSchemes.TryGet(Scheme, out SoftwareSignatureScheme? s) ? s! : throw new InvalidOperationException(Scheme);
        _key = _scheme.GenerateKey();
        _publicKey = _key.PublicKey.ToArray();
        _signature = _key.Sign(_message).Signature;
    }

    [GlobalCleanup]
    public void Cleanup() => _key.Dispose();

    [Benchmark]
    public ReadOnlyMemory<byte> KeyGen()
    {
        using SoftwareSigningKey key = _scheme.GenerateKey();
        return key.PublicKey;
    }

    [Benchmark]
    public byte[] Sign() => _key.Sign(_message).Signature;

    [Benchmark]
    public bool Verify() => _scheme.Verify(_publicKey, _message, _signature);
}

/// <summary>ML-DSA-65 signing with the key already expanded, to show what re-expanding the stored seed costs per sign.</summary>
[MemoryDiagnoser]
public class MlDsaExpandedKeyBenchmarks
{
    private readonly byte[] _message = RandomNumberGenerator.GetBytes(64);
    private MLDsaPrivateKeyParameters _expanded = null!;

    [GlobalSetup]
    public void Setup() => _expanded = MLDsaPrivateKeyParameters.FromSeed(PostQuantumSchemes.MlDsa65.Parameters, RandomNumberGenerator.GetBytes(32));

    [Benchmark]
    public byte[] MlDsa65SignExpandedKey() => MlDsaCore.Sign(_expanded, _message, [], deterministic: false, SystemRandomSource.Instance);
}
