using Conclave.Crypto.Memory;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>
/// The public facts of a presigned session that the combiner needs: session id, signer set, derivation path, the child
/// public key the signature will verify under, R and the key epoch. The same at every honest signer.
/// </summary>
public sealed class DklsSigningContext
{
    internal DklsSigningContext(byte[] sid, Identifier[] signers, uint[] path, Secp256k1Point childKey, Secp256k1Point r, uint epoch, byte[] setupSid)
    {
        SetupSessionId = setupSid;
        SessionIdBytes = sid;
        SignerSet = signers;
        PathArray = path;
        ChildKey = childKey;
        R = r;
        Epoch = epoch;
    }

    internal byte[] SessionIdBytes { get; }

    /// <summary>The pairwise setup of the key shares that made this presignature (changes on refresh and reshare).</summary>
    internal byte[] SetupSessionId { get; }

    internal Identifier[] SignerSet { get; }

    internal uint[] PathArray { get; }

    internal Secp256k1Point ChildKey { get; }

    internal Secp256k1Point R { get; }

    public byte[] SessionId => (byte[])SessionIdBytes.Clone();

    public IReadOnlyList<Identifier> Signers => SignerSet;

    public IReadOnlyList<uint> Path => PathArray;

    /// <summary>The key the signature verifies under (the group key, or its CKDpub child at <see cref="Path"/>), 33 bytes.</summary>
    public byte[] PublicKey => ChildKey.ToCompressed();

    /// <summary>R = k·G of the signature, 33 bytes compressed.</summary>
    public byte[] NoncePoint => R.ToCompressed();

    public uint Epoch { get; }
}

/// <summary>
/// One signer's presignature: the output of rounds one to three, before any message is known. Holds u_i (public once
/// sent), and the secrets v_i and φ_i. Used at most once: <see cref="DklsSigner.Sign"/> consumes it whatever the
/// outcome, and refuses it for another path than the one fixed in round one or after the key was refreshed.
/// </summary>
public sealed class DklsPresignature : IDisposable
{
    private readonly SecretBuffer _secrets = SecretBuffer.Allocate(96);
    private int _consumed;

    internal DklsPresignature(Identifier me, DklsSigningContext context, Secp256k1Scalar u, Secp256k1Scalar v, Secp256k1Scalar phi)
    {
        Identifier = me;
        Context = context;
        u.WriteTo(_secrets.Span[..32]);
        v.WriteTo(_secrets.Span.Slice(32, 32));
        phi.WriteTo(_secrets.Span.Slice(64, 32));
    }

    public Identifier Identifier { get; }

    public DklsSigningContext Context { get; }

    public bool IsConsumed => Volatile.Read(ref _consumed) != 0;

    /// <summary>Marks the presignature used and returns (u_i, v_i, φ_i); a second call is refused.</summary>
    internal (Secp256k1Scalar U, Secp256k1Scalar V, Secp256k1Scalar Phi) Consume()
    {
        if (Interlocked.Exchange(ref _consumed, 1) != 0 || _secrets.IsDisposed)
        {
            throw DklsErrors.Refused(DklsFailure.PresignatureRefused, "this presignature was already used; a presignature signs at most once");
        }

        try
        {
            ReadOnlySpan<byte> s = _secrets.ReadOnlySpan;
            return (Secp256k1Scalar.FromBytes(s[..32]), Secp256k1Scalar.FromBytes(s.Slice(32, 32)), Secp256k1Scalar.FromBytes(s.Slice(64, 32)));
        }
        finally
        {
            _secrets.Dispose();
        }
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _consumed, 1);
        _secrets.Dispose();
    }

    public override string ToString() => $"DklsPresignature(participant {Identifier}, {(IsConsumed ? "used" : "unused")})";
}
