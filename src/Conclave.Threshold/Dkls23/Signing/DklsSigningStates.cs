using Conclave.Crypto.Memory;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Vole;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>The secret state of one signing session, moved from step to step and zeroed when the session ends.</summary>
internal sealed class SignCore : IDisposable
{
    internal const int ROffset = 0;
    internal const int PhiOffset = 32;
    internal const int SkOffset = 64;

    private readonly SecretBuffer _secrets = SecretBuffer.Allocate(96);

    internal SignCore(DklsKeyShare key, byte[] sid, Identifier[] signers, uint[] path, Secp256k1Point childKey)
    {
        Key = key;
        SessionId = sid;
        Signers = signers;
        Path = path;
        ChildKey = childKey;
        Epoch = key.Public.Epoch;
    }

    internal DklsKeyShare Key { get; }

    internal Identifier Me => Key.Identifier;

    internal byte[] SessionId { get; }

    /// <summary>
    /// The session id every transcript of this session uses: H(sid, digest of the public key package, setup session id),
    /// which binds the DKG session id, the key epoch and the pairwise setup into every commitment, VOLE and zero share.
    /// </summary>
    internal byte[] Bound { get; set; } = [];

    internal Identifier[] Signers { get; }

    internal IEnumerable<Identifier> Peers => Signers.Where(s => !s.Equals(Me));

    internal uint[] Path { get; }

    internal Secp256k1Point ChildKey { get; }

    internal uint Epoch { get; }

    internal Secp256k1Point BigR { get; set; }

    internal byte[] Salt { get; set; } = [];

    internal Secp256k1Point Pk { get; set; }

    internal Dictionary<Identifier, RandomVole.BobState> Bob { get; } = [];

    internal Dictionary<Identifier, byte[]> TheirCommitments { get; } = [];

    /// <summary>Every signer's round-one broadcast commitment as this party has it (its own included).</summary>
    internal Dictionary<Identifier, byte[]> TheirBroadcasts { get; } = [];

    /// <summary>Alice-side RVOLE shares with each peer: (c^u, c^v).</summary>
    internal Dictionary<Identifier, Secp256k1Scalar[]> AliceShares { get; } = [];

    internal Secp256k1Scalar Get(int offset) => Secp256k1Scalar.FromBytes(_secrets.ReadOnlySpan.Slice(offset, 32));

    internal void Set(int offset, Secp256k1Scalar s) => s.WriteTo(_secrets.Span.Slice(offset, 32));

    public void Dispose()
    {
        _secrets.Dispose();
        foreach (RandomVole.BobState b in Bob.Values)
        {
            b.Dispose();
        }

        foreach (Secp256k1Scalar[] a in AliceShares.Values)
        {
            Array.Clear(a);
        }

        Bob.Clear();
        AliceShares.Clear();
    }
}

/// <summary>
/// A signer's secret state after signing round one (r_i, φ_i, its additive key share and its Bob-side VOLE states).
/// Consumed by <see cref="DklsSigner.Round2"/> whatever the outcome (except a dropped message, which leaves it usable).
/// </summary>
public sealed class DklsSignRound1State : IDisposable
{
    private SignCore? _core;
    private readonly byte[] _broadcast;

    internal DklsSignRound1State(SignCore core, byte[] broadcast)
    {
        _core = core;
        _broadcast = broadcast;
        Identifier = core.Me;
    }

    /// <summary>The party whose state this is (readable after the state was consumed).</summary>
    public Identifier Identifier { get; }

    /// <summary>
    /// This party's round-one broadcast commitment C_i (32 bytes, public, hiding): to be sent, the same value, to every
    /// peer, which passes it to <see cref="DklsSigner.Round2"/>.
    /// </summary>
    public byte[] Broadcast => [.. _broadcast];

    internal SignCore Peek() => _core ?? throw ThresholdErrors.Consumed("this round-one signing state");

    internal SignCore Take() => Interlocked.Exchange(ref _core, null) ?? throw ThresholdErrors.Consumed("this round-one signing state");

    public void Dispose() => Interlocked.Exchange(ref _core, null)?.Dispose();
}

/// <summary>A signer's secret state after signing round two. Consumed by <see cref="DklsSigner.Round3"/>.</summary>
public sealed class DklsSignRound2State : IDisposable
{
    private SignCore? _core;
    private readonly byte[] _echo;

    internal DklsSignRound2State(SignCore core, byte[] echo)
    {
        _core = core;
        _echo = echo;
    }

    /// <summary>The digest of every signer's round-one broadcast commitment as this party received them (<see cref="DklsEcho.Digest"/>), to echo to its peers.</summary>
    public byte[] Echo => [.. _echo];

    internal SignCore Peek() => _core ?? throw ThresholdErrors.Consumed("this round-two signing state");

    internal SignCore Take() => Interlocked.Exchange(ref _core, null) ?? throw ThresholdErrors.Consumed("this round-two signing state");

    public void Dispose() => Interlocked.Exchange(ref _core, null)?.Dispose();
}
