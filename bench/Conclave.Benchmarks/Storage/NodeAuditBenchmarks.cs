using BenchmarkDotNet.Attributes;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Signing;
using Conclave.Node.Frost;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Benchmarks.Storage;

/// <summary>
/// Issue 14: the cost of the node's durable audit record per signing round. A signer node appends one record per sign step
/// (SignAuditRecords.RecordShareAsync: key, version, message hash, nonce id, session) to its own hash-chained log and waits
/// until it is durable before the share leaves (FrostHandlers, sign step); the other per-run appends (DKG prepared, rotation
/// commit/retire/abort) are once per run, not per round. Rows, on a SQLite store opened as a node opens its own (checkpoints
/// signed by an Ed25519 key every 1000 entries): the round-two arithmetic alone (baseline), the same plus the durable append
/// with one round at a time (one commit per round), and 32 rounds in flight (group commit, per round). The difference
/// between a row and the baseline is the audit's cost per round. Not run in tests (the machine is shared); the lead runs it:
/// dotnet run -c Release --project bench/Conclave.Benchmarks -- --filter '*NodeAuditBenchmarks*'
/// </summary>
[MemoryDiagnoser]
public class NodeAuditBenchmarks
{
    private const int InFlight = 32;
    private static readonly byte[] s_nonceId = new byte[16];
    private static readonly byte[] s_session = new byte[32];
    private DealerOutput _dealt = null!;
    private SigningPackage _package = null!;
    private KeyPackage _signer = null!;
    private Scalar _d = null!, _e = null!;
    private IConclaveStore _store = null!;
    private SoftwareSigningKey _checkpointKey = null!;
    private string _dir = "";
    private byte[] _message = [];

    [Params("frost-secp256k1", "frost-ed25519")]
    public string Scheme { get; set; } = "frost-secp256k1";

    [GlobalSetup]
    public void Setup()
    {
        FrostCiphersuite suite = FrostScheme.Get(Scheme).Suite;
        _dealt = TrustedDealer.Generate(suite, 2, 3, SystemRandomSource.Instance);
        KeyPackage[] signers = [.. _dealt.KeyPackages.Take(2)];
        var nonces = signers.Select(k => FrostSigner.Commit(k)).ToList();
        using (var copy = SigningNonces.Import(suite, nonces[0].Export().ReadOnlySpan))
        {
            (_d, _e) = copy.Consume();
        }

        _message = "benchmark message: liquidate position 42"u8.ToArray();
        _package = new SigningPackage(_message, nonces.Select(n => n.Commitments));
        _signer = signers[0];
        _dir = Path.Combine(Path.GetTempPath(), "conclave-bench-node-audit-" + Guid.NewGuid().ToString("N"));
        _checkpointKey = SignatureSchemes.Ed25519.GenerateKey();
        _store = ConclaveStore.OpenSqliteAsync(_dir, new StoreOptions { CheckpointSigner = _checkpointKey, CheckpointInterval = 1000 }).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _checkpointKey.Dispose();
        _dealt.Dispose();
        Directory.Delete(_dir, true);
    }

    [Benchmark(Baseline = true, Description = "sign step arithmetic only (round 2, one signer)")]
    public SignatureShare SignOnly() => FrostSigner.SignCore(_package, _d, _e, _signer);

    [Benchmark(Description = "sign step + durable node audit record, one round at a time")]
    public async Task<SignatureShare> SignWithAudit()
    {
        SignatureShare share = FrostSigner.SignCore(_package, _d, _e, _signer);
        await SignAuditRecords.RecordShareAsync(_store, 1, "bench-key", 1, _message, s_nonceId, s_session, CancellationToken.None).ConfigureAwait(false);
        return share;
    }

    [Benchmark(Description = "sign step + durable node audit record, 32 rounds in flight (group commit), per round", OperationsPerInvoke = InFlight)]
    public Task SignWithAuditConcurrent()
    {
        var rounds = new Task[InFlight];
        for (int i = 0; i < rounds.Length; i++)
        {
            rounds[i] = Task.Run(SignWithAudit);
        }

        return Task.WhenAll(rounds);
    }
}
