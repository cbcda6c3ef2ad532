using BenchmarkDotNet.Attributes;
using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Benchmarks.Threshold;

/// <summary>
/// FROST per suite and shape: trusted-dealer keygen, round 1 (one signer's commit), round 2 (one signer's share,
/// the arithmetic after the nonce checks), aggregate (verify t shares, sum, verify the signature).
/// Signing uses exactly t signers.
/// </summary>
[MemoryDiagnoser]
public class FrostBenchmarks
{
    private DealerOutput _dealt = null!;
    private SigningPackage _package = null!;
    private List<SignatureShare> _shares = null!;
    private KeyPackage _signer = null!;
    private Scalar _d = null!, _e = null!;
    private int _t, _n;
    private FrostCiphersuite _suite = null!;

    [Params("frost-ed25519", "frost-secp256k1", "frost-taproot")]
    public string Scheme { get; set; } = "";

    [Params("2-of-3", "3-of-5", "67-of-100")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _suite = FrostScheme.Get(Scheme).Suite;
        string[] parts = Shape.Split("-of-");
        (_t, _n) = (int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        _dealt = TrustedDealer.Generate(_suite, _t, _n, SystemRandomSource.Instance);
        KeyPackage[] signers = [.. _dealt.KeyPackages.Take(_t)];
        var nonces = signers.Select(k => FrostSigner.Commit(k)).ToList();
        // Keep signer 1's nonce scalars for the repeatable round-2 benchmark.
        using (var copy = SigningNonces.Import(_suite, nonces[0].Export().ReadOnlySpan))
        {
            (_d, _e) = copy.Consume();
        }

        _package = new SigningPackage("benchmark message: liquidate position 42"u8, nonces.Select(n => n.Commitments));
        _shares = [.. signers.Select((k, i) => FrostSigner.Sign(_package, nonces[i], k))];
        _signer = signers[0];
        _ = FrostAggregator.Aggregate(_package, _shares, _dealt.PublicKeyPackage);
    }

    [GlobalCleanup]
    public void Cleanup() => _dealt.Dispose();

    [Benchmark(Description = "dealer keygen")]
    public void DealerKeygen()
    {
        using DealerOutput d = TrustedDealer.Generate(_suite, _t, _n, SystemRandomSource.Instance);
    }

    [Benchmark(Description = "round 1 (commit, one signer)")]
    public SigningCommitments Round1()
    {
        using SigningNonces n = FrostSigner.Commit(_signer);
        return n.Commitments;
    }

    [Benchmark(Description = "round 2 (sign, one signer)")]
    public SignatureShare Round2() => FrostSigner.SignCore(_package, _d, _e, _signer);

    [Benchmark(Description = "aggregate (verify shares + signature)")]
    public byte[] Aggregate() => FrostAggregator.Aggregate(_package, _shares, _dealt.PublicKeyPackage);

    [Benchmark(Description = "aggregate (signature first, shares on failure)")]
    public byte[] AggregateSignatureFirst() => FrostAggregator.Aggregate(_package, _shares, _dealt.PublicKeyPackage, AggregationMode.VerifySignatureFirst);
}

/// <summary>
/// DKG: the whole protocol for all n participants in one process (2-of-3, 3-of-5); for 67-of-100 one
/// participant's own work (round 1, round 2 over 99 broadcasts, finish over 99 shares) with the others'
/// messages prepared in setup. Confirmation checks (n proofs) are included for the small shapes.
/// </summary>
public class FrostDkgBenchmarks
{
    private FrostCiphersuite _suite = null!;
    private DkgSession _session = null!;
    private IReadOnlyList<Identifier> _ids = [];
    private List<DkgRound1Package> _others = [];
    private List<DkgCommitment> _otherCommitments = [];
    private List<byte[]> _toMe = [];
    private int _t, _n;

    [Params("frost-ed25519", "frost-secp256k1", "frost-taproot")]
    public string Scheme { get; set; } = "";

    [Params("2-of-3", "3-of-5", "67-of-100")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _suite = FrostScheme.Get(Scheme).Suite;
        string[] parts = Shape.Split("-of-");
        (_t, _n) = (int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        _ids = TrustedDealer.Ids(_suite, _n);
        _session = DkgSession.ForKeyGeneration(_suite, "benchmark-session-0001"u8, _t, _ids);
        if (_n <= 5)
        {
            return;
        }

        // Participant 1's view: everybody else's broadcasts, and the shares they send to participant 1.
        var commits = _ids.Select(id => id == _ids[0] ? Dkg.Commit(_session, id, null, new FixedSeed(1)) : Dkg.Commit(_session, id, null, SystemRandomSource.Instance)).ToList();
        var commitments = commits.Select(c => c.Commitment!).ToList();
        _otherCommitments = commitments.Skip(1).ToList();
        var r1 = commits.Select(c => Dkg.Round1(c, [.. commitments.Where(o => o.Sender != c.Self)])).ToList();
        var all = r1.Select(s => s.Package!).ToList();
        _others = all.Skip(1).ToList();
        r1[0].Dispose();
        for (int i = 1; i < r1.Count; i++)
        {
            (DkgRound2Secret s, IReadOnlyList<DkgRound2Package> outgoing) = Dkg.Round2(r1[i], [.. all.Where(p => p.Sender != r1[i].Self)]);
            s.Dispose();
            foreach (DkgRound2Package p in outgoing)
            {
                if (p.Recipient == _ids[0])
                {
                    using Conclave.Crypto.Memory.SecretBuffer b = p.Export();
                    _toMe.Add(b.ReadOnlySpan.ToArray());
                }

                p.Dispose();
            }
        }
    }

    [Benchmark(Description = "DKG (all n in-process; 67-of-100: one participant)")]
    public void DkgRun()
    {
        if (_n > 5)
        {
            DkgRound1Secret mine = Dkg.Round1(Dkg.Commit(_session, _ids[0], null, new FixedSeed(1)), _otherCommitments);
            (DkgRound2Secret s, IReadOnlyList<DkgRound2Package> outgoing) = Dkg.Round2(mine, _others);
            foreach (DkgRound2Package p in outgoing)
            {
                p.Dispose();
            }

            using DkgPendingKey mineKey = Dkg.Finish(s, [.. _toMe.Select(b => DkgRound2Package.Import(_suite, b))], SystemRandomSource.Instance);
            return;
        }

        var all = _ids.Select(id => Dkg.Commit(_session, id, null, SystemRandomSource.Instance)).ToList();
        var r1 = all.Select(c => Dkg.Round1(c, [.. all.Where(o => o != c).Select(o => o.Commitment!)])).ToList();
        var broadcasts = r1.Select(s => s.Package!).ToList();
        var r2 = r1.Select(s => Dkg.Round2(s, [.. broadcasts.Where(b => b.Sender != s.Self)])).ToList();
        var pending = r2.Select(x => Dkg.Finish(x.Secret, [.. r2.SelectMany(o => o.Outgoing).Where(p => p.Recipient == x.Secret.Self)], SystemRandomSource.Instance)).ToList();
        var confirmations = pending.Select(p => p.Confirmation).ToList();
        foreach (DkgPendingKey p in pending)
        {
            using KeyPackage k = p.Complete(confirmations);
        }
    }

    /// <summary>The same bytes every time (participant 1's polynomial must not change between setup and the runs).</summary>
    private sealed class FixedSeed(ulong seed) : IRandomSource
    {
        private ulong _counter;

        public void Fill(Span<byte> destination)
        {
            for (int i = 0; i < destination.Length; i += 32)
            {
                byte[] block = System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(seed).Concat(BitConverter.GetBytes(_counter++)).ToArray());
                block.AsSpan(0, Math.Min(32, destination.Length - i)).CopyTo(destination[i..]);
            }
        }
    }
}
