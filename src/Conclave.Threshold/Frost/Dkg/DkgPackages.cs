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
/// A dealer's round-two point-to-point message to one receiver: the secret share f_i(j), the echo digest of every
/// commitment and round-one broadcast the dealer saw, the dealer's chain-code contribution (32 bytes for key
/// generation, empty for refresh and reshare), and the dealer's Schnorr signature over all of it (and the session,
/// sender and recipient) under the signing key it committed to in <see cref="DkgCommitment"/>. Secret: this library
/// hands it out in plain form; the node layer MUST encrypt it to the recipient before it leaves the node
/// (DESIGN.md "Topology"). The signature is what makes a complaint verifiable (<see cref="DkgComplaint"/>).
/// </summary>
public sealed class DkgRound2Package : IDisposable
{
    internal const int ContributionSizeInBytes = 32;
    private readonly SecretBuffer _share;
    private readonly SecretBuffer? _contribution;
    private readonly byte[] _echo;

    internal DkgRound2Package(Identifier sender, Identifier recipient, ReadOnlySpan<byte> echo, Scalar share, ReadOnlySpan<byte> contribution, Element signatureR, Scalar signatureZ)
    {
        Sender = sender;
        Recipient = recipient;
        _echo = echo.ToArray();
        _share = SecretBuffer.Allocate(sender.Suite.ScalarSizeInBytes);
        share.WriteTo(_share.Span);
        _contribution = contribution.IsEmpty ? null : SecretBuffer.CopyFrom(contribution);
        SignatureR = signatureR;
        SignatureZ = signatureZ;
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

    /// <summary>The dealer's chain-code contribution (secret to the participants).</summary>
    internal ReadOnlySpan<byte> Contribution
    {
        get
        {
            ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
            return _contribution is null ? [] : _contribution.ReadOnlySpan;
        }
    }

    internal Element SignatureR { get; }

    internal Scalar SignatureZ { get; }

    /// <summary>The secret encoding, to be encrypted to <see cref="Recipient"/> by the node layer.</summary>
    public SecretBuffer Export()
    {
        ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
        FrostCiphersuite suite = Suite;
        int size = 3 + (3 * suite.ScalarSizeInBytes) + _echo.Length + 1 + Contribution.Length + suite.ElementSizeInBytes + suite.ScalarSizeInBytes;
        var w = new WireWriter(WireKind.DkgRound2, suite, size);
        w.Id(Sender);
        w.Id(Recipient);
        w.Raw(_echo);
        w.Raw(_share.ReadOnlySpan);
        w.Byte((byte)Contribution.Length);
        w.Raw(Contribution);
        w.Element(SignatureR);
        w.Scalar(SignatureZ);
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
        int n = r.Byte();
        if (n is not (0 or ContributionSizeInBytes))
        {
            throw ThresholdErrors.Format("dkgRound2Package", "a chain-code contribution is 0 or 32 bytes");
        }

        ReadOnlySpan<byte> contribution = r.Raw(n);
        Element sigR = r.Element("signature.R");
        Scalar sigZ = r.Scalar("signature.z");
        r.End();
        return new DkgRound2Package(sender, recipient, echo, share, contribution, sigR, sigZ);
    }

    public void Dispose()
    {
        _share.Dispose();
        _contribution?.Dispose();
    }

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
/// a round-two message whose share does not match the accused's Feldman commitments at the accuser's identifier,
/// or whose chain-code contribution does not match the accused's <see cref="DkgCommitment"/>. The evidence is the
/// whole round-two message as the accused signed it (echo, share, contribution, signature under the per-run signing
/// key the accused committed to before round one), so anyone holding the accused's commitment and round-one
/// broadcast — the coordinator relayed both — can check it with <see cref="Dkg.VerifyComplaint"/>: a forged or
/// altered share fails the accused's signature, so a lying accuser convicts nobody. Revealing the bad share and the
/// contribution does not hurt: the run is aborted and its key and chain code are never used.
/// </summary>
public sealed class DkgComplaint
{
    private readonly byte[] _echo;
    private readonly byte[] _contribution;

    internal DkgComplaint(Identifier accuser, Identifier accused, ReadOnlySpan<byte> echo, Scalar share, ReadOnlySpan<byte> contribution, Element signatureR, Scalar signatureZ)
    {
        Accuser = accuser;
        Accused = accused;
        _echo = echo.ToArray();
        Evidence = share;
        _contribution = contribution.ToArray();
        SignatureR = signatureR;
        SignatureZ = signatureZ;
    }

    /// <summary>The complaint about a received round-two message (its recipient accuses its sender).</summary>
    internal static DkgComplaint About(DkgRound2Package p)
        => new(p.Recipient, p.Sender, p.EchoDigest, p.Share, p.Contribution, p.SignatureR, p.SignatureZ);

    public Identifier Accuser { get; }

    public Identifier Accused { get; }

    public FrostCiphersuite Suite => Accuser.Suite;

    internal ReadOnlySpan<byte> EchoDigest => _echo;

    /// <summary>The share the accused sent.</summary>
    internal Scalar Evidence { get; }

    internal ReadOnlySpan<byte> Contribution => _contribution;

    internal Element SignatureR { get; }

    internal Scalar SignatureZ { get; }

    public byte[] ToBytes()
    {
        var w = new WireWriter(WireKind.DkgComplaint, Suite);
        w.Id(Accuser);
        w.Id(Accused);
        w.Raw(_echo);
        w.Scalar(Evidence);
        w.Byte((byte)_contribution.Length);
        w.Raw(_contribution);
        w.Element(SignatureR);
        w.Scalar(SignatureZ);
        return w.ToArray();
    }

    public static DkgComplaint FromBytes(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.DkgComplaint, suite, "dkgComplaint");
        Identifier accuser = r.Id("accuser");
        Identifier accused = r.Id("accused");
        ReadOnlySpan<byte> echo = r.Raw(32);
        Scalar share = r.Scalar("evidence");
        int n = r.Byte();
        if (n is not (0 or DkgRound2Package.ContributionSizeInBytes))
        {
            throw ThresholdErrors.Format("dkgComplaint", "a chain-code contribution is 0 or 32 bytes");
        }

        ReadOnlySpan<byte> contribution = r.Raw(n);
        var c = new DkgComplaint(accuser, accused, echo, share, contribution, r.Element("signature.R"), r.Scalar("signature.z"));
        r.End();
        return c;
    }

    public override string ToString() => $"DkgComplaint({Accuser} accuses {Accused})";
}
