using Conclave.Crypto.Memory;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>
/// A dealer's round-one broadcast: its Feldman VSS commitment C_k = a_k·G (k = 0..t−1; for refresh k = 1..t−1,
/// the zero constant term being implicit) and a Schnorr proof of knowledge (R, μ) of a_0 whose challenge binds
/// the session digest, the dealer's id and every commitment (FROST paper Figure 1 round 1 steps 2–5; ATTACKS.md
/// "Rogue-key", "Ambiguous Fiat–Shamir transcripts", "Missing commitment in a challenge hash").
/// </summary>
public sealed class DkgRound1Package
{
    internal DkgRound1Package(Identifier sender, IReadOnlyList<Element> commitment, Element? proofR, Scalar? proofZ)
    {
        Sender = sender;
        Commitment = commitment;
        ProofR = proofR;
        ProofZ = proofZ;
    }

    public Identifier Sender { get; }

    public FrostCiphersuite Suite => Sender.Suite;

    internal IReadOnlyList<Element> Commitment { get; }

    internal Element? ProofR { get; }

    internal Scalar? ProofZ { get; }

    public int CommitmentCount => Commitment.Count;

    public byte[] ToBytes()
    {
        var w = new WireWriter(WireKind.DkgRound1, Suite);
        w.Id(Sender);
        w.U16(Commitment.Count);
        foreach (Element c in Commitment)
        {
            w.Element(c);
        }

        w.Byte(ProofR is null ? (byte)0 : (byte)1);
        if (ProofR is not null)
        {
            w.Element(ProofR);
            w.Scalar(ProofZ!);
        }

        return w.ToArray();
    }

    /// <summary>Parses and validates the encoding (points valid and not the identity, scalars canonical). Protocol checks follow in round two.</summary>
    public static DkgRound1Package FromBytes(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.DkgRound1, suite, "dkgRound1Package");
        Identifier sender = r.Id("sender");
        int n = r.U16();
        var list = new List<Element>(n);
        for (int i = 0; i < n; i++)
        {
            list.Add(r.Element("commitment"));
        }

        Element? pr = null;
        Scalar? pz = null;
        byte hasProof = r.Byte();
        if (hasProof > 1)
        {
            throw ThresholdErrors.Format("dkgRound1Package", "bad proof flag");
        }

        if (hasProof == 1)
        {
            pr = r.Element("proof.R");
            pz = r.Scalar("proof.z");
        }

        r.End();
        return new DkgRound1Package(sender, list, pr, pz);
    }
}

/// <summary>
/// A dealer's round-two point-to-point message to one receiver: the secret share f_i(j) and the echo digest of
/// every round-one broadcast the dealer saw. Secret: this library hands it out in plain form; the node layer
/// MUST encrypt it to the recipient (and sign it) before it leaves the node (DESIGN.md "Topology").
/// </summary>
public sealed class DkgRound2Package : IDisposable
{
    private readonly SecretBuffer _share;
    private readonly byte[] _echo;

    internal DkgRound2Package(Identifier sender, Identifier recipient, ReadOnlySpan<byte> echo, Scalar share)
    {
        Sender = sender;
        Recipient = recipient;
        _echo = echo.ToArray();
        _share = SecretBuffer.Allocate(sender.Suite.ScalarSizeInBytes);
        share.WriteTo(_share.Span);
    }

    public Identifier Sender { get; }

    public Identifier Recipient { get; }

    public FrostCiphersuite Suite => Sender.Suite;

    public ReadOnlySpan<byte> EchoDigest => _echo;

    internal Scalar Share
    {
        get
        {
            ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
            return Suite.TryReadScalar(_share.ReadOnlySpan, out Scalar? s) ? s : throw new InvalidOperationException("corrupt share");
        }
    }

    /// <summary>The secret encoding, to be encrypted to <see cref="Recipient"/> by the node layer.</summary>
    public SecretBuffer Export()
    {
        ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
        var w = new WireWriter(WireKind.DkgRound2, Suite);
        w.Id(Sender);
        w.Id(Recipient);
        w.Raw(_echo);
        w.Raw(_share.ReadOnlySpan);
        return w.ToSecret();
    }

    public static DkgRound2Package Import(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.DkgRound2, suite, "dkgRound2Package");
        Identifier sender = r.Id("sender");
        Identifier recipient = r.Id("recipient");
        ReadOnlySpan<byte> echo = r.Raw(32);
        Scalar share = r.Scalar("share");
        r.End();
        return new DkgRound2Package(sender, recipient, echo, share);
    }

    public void Dispose() => _share.Dispose();

    public override string ToString() => $"DkgRound2Package({Sender} -> {Recipient})";
}

/// <summary>
/// A receiver's confirmation after round two: the digest of (session, echo, resulting public key package) and a
/// Schnorr proof that it holds the signing share behind its new verifying share. The key becomes usable only once
/// every receiver's confirmation matches (ATTACKS.md "Inconsistent broadcast", "Premature deletion").
/// </summary>
public sealed class DkgConfirmation
{
    private readonly byte[] _digest;

    internal DkgConfirmation(Identifier sender, ReadOnlySpan<byte> digest, Element proofR, Scalar proofZ)
    {
        Sender = sender;
        _digest = digest.ToArray();
        ProofR = proofR;
        ProofZ = proofZ;
    }

    public Identifier Sender { get; }

    public FrostCiphersuite Suite => Sender.Suite;

    public ReadOnlySpan<byte> Digest => _digest;

    internal Element ProofR { get; }

    internal Scalar ProofZ { get; }

    public byte[] ToBytes()
    {
        var w = new WireWriter(WireKind.DkgConfirmation, Suite);
        w.Id(Sender);
        w.Raw(_digest);
        w.Element(ProofR);
        w.Scalar(ProofZ);
        return w.ToArray();
    }

    public static DkgConfirmation FromBytes(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.DkgConfirmation, suite, "dkgConfirmation");
        Identifier sender = r.Id("sender");
        ReadOnlySpan<byte> digest = r.Raw(32);
        var c = new DkgConfirmation(sender, digest, r.Element("proof.R"), r.Scalar("proof.z"));
        r.End();
        return c;
    }
}

/// <summary>
/// A complaint (FROST paper Figure 1, round 2 step 2): <see cref="Accuser"/> received from <see cref="Accused"/>
/// a share that does not match the accused's broadcast commitment. It carries the share as evidence, so any
/// participant can check it with <see cref="Dkg.VerifyComplaint"/> (the node layer's signature on the round-two
/// message makes the evidence attributable). Revealing the bad share does not hurt: the run is aborted.
/// </summary>
public sealed class DkgComplaint
{
    internal DkgComplaint(Identifier accuser, Identifier accused, Scalar evidence)
    {
        Accuser = accuser;
        Accused = accused;
        Evidence = evidence;
    }

    public Identifier Accuser { get; }

    public Identifier Accused { get; }

    public FrostCiphersuite Suite => Accuser.Suite;

    internal Scalar Evidence { get; }

    public byte[] ToBytes()
    {
        var w = new WireWriter(WireKind.DkgComplaint, Suite);
        w.Id(Accuser);
        w.Id(Accused);
        w.Scalar(Evidence);
        return w.ToArray();
    }

    public static DkgComplaint FromBytes(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.DkgComplaint, suite, "dkgComplaint");
        var c = new DkgComplaint(r.Id("accuser"), r.Id("accused"), r.Scalar("evidence"));
        r.End();
        return c;
    }
}
