using BenchmarkDotNet.Attributes;
using Conclave.Crypto.Memory;
using Conclave.Wallets;
using Conclave.Wallets.Bip39;
using Conclave.Wallets.Hd;

namespace Conclave.Benchmarks.Wallets;

/// <summary>
/// BIP-39 seed (PBKDF2-HMAC-SHA512, 2048 rounds: meant to be slow), BIP-32 master key, a full BIP-44 Ethereum path,
/// one CKDpub step and a SLIP-10 ed25519 Solana path.
/// </summary>
[MemoryDiagnoser]
public class WalletBenchmarks
{
    private const string Mnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    private static readonly KeyPath s_ethereum = KeyPath.Parse("m/44'/60'/0'/0/0");
    private static readonly KeyPath s_solana = KeyPath.Parse("m/44'/501'/0'/0'");
    private SecretBuffer _seed = null!;
    private ExtendedPrivateKey _master = null!;
    private ExtendedPrivateKey _edMaster = null!;
    private ExtendedPublicKey _xpub = null!;

    [GlobalSetup]
    public void Setup()
    {
        _seed = Bip39Mnemonic.ToSeed(Mnemonic);
        _master = ExtendedPrivateKey.FromSeed(_seed.Span);
        _edMaster = ExtendedPrivateKey.FromSeed(_seed.Span, HdCurve.Ed25519);
        using ExtendedPrivateKey account = _master.Derive("m/44'/60'/0'/0");
        _xpub = account.ToExtendedPublicKey();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _seed.Dispose();
        _master.Dispose();
        _edMaster.Dispose();
    }

    [Benchmark]
    public int MnemonicToSeed()
    {
        using SecretBuffer seed = Bip39Mnemonic.ToSeed(Mnemonic);
        return seed.Length;
    }

    [Benchmark]
    public uint MasterFromSeed()
    {
        using ExtendedPrivateKey master = ExtendedPrivateKey.FromSeed(_seed.Span);
        return master.Fingerprint;
    }

    [Benchmark]
    public uint DeriveBip44Ethereum()
    {
        using ExtendedPrivateKey key = _master.Derive(s_ethereum);
        return key.Fingerprint;
    }

    [Benchmark]
    public uint PublicChild() => _xpub.DeriveChild(7).Fingerprint;

    [Benchmark]
    public uint DeriveSlip10Solana()
    {
        using ExtendedPrivateKey key = _edMaster.Derive(s_solana);
        return key.Fingerprint;
    }
}
