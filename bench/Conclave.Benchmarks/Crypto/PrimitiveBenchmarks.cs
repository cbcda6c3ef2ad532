using BenchmarkDotNet.Attributes;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Secp256k1;

namespace Conclave.Benchmarks.Crypto;

/// <summary>Group operations the threshold protocols are built from.</summary>
public class PrimitiveBenchmarks
{
    private Secp256k1Scalar _a, _b;
    private Secp256k1Point _p, _q;
    private Ed25519Scalar _ea, _eb;
    private Ed25519Point _ep, _eq;

    [GlobalSetup]
    public void Setup()
    {
        _a = Secp256k1Scalar.Random(SystemRandomSource.Instance);
        _b = Secp256k1Scalar.Random(SystemRandomSource.Instance);
        _p = Secp256k1Point.MultiplyGenerator(_a);
        _q = Secp256k1Point.MultiplyGenerator(_b);
        _ea = Ed25519Scalar.Random(SystemRandomSource.Instance);
        _eb = Ed25519Scalar.Random(SystemRandomSource.Instance);
        _ep = Ed25519Point.MultiplyGenerator(_ea);
        _eq = Ed25519Point.MultiplyGenerator(_eb);
    }

    [Benchmark] public Secp256k1Scalar Secp256k1ScalarMul() => _a * _b;

    [Benchmark] public Secp256k1Scalar Secp256k1ScalarInvert() => _a.Invert();

    [Benchmark] public Secp256k1Point Secp256k1BaseMul() => Secp256k1Point.MultiplyGenerator(_a);

    [Benchmark] public Secp256k1Point Secp256k1PointMul() => _p.MultiplyPublic(_b);

    [Benchmark] public Secp256k1Point Secp256k1PointAdd() => _p + _q;

    [Benchmark] public Ed25519Scalar Ed25519ScalarMul() => _ea * _eb;

    [Benchmark] public Ed25519Point Ed25519BaseMul() => Ed25519Point.MultiplyGenerator(_ea);

    [Benchmark] public Ed25519Point Ed25519PointMul() => _ep.Multiply(_eb);

    [Benchmark] public Ed25519Point Ed25519PointAdd() => _ep + _eq;
}
