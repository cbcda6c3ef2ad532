using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>
/// A signer's round-one output (RFC 9591 section 5.1): its identifier and the commitments D = d·G (hiding) and
/// E = e·G (binding). Public; sent to the coordinator.
/// </summary>
public sealed class SigningCommitments
{
    internal SigningCommitments(Identifier id, Element hiding, Element binding)
    {
        Identifier = id;
        Hiding = hiding;
        Binding = binding;
    }

    public Identifier Identifier { get; }

    public FrostCiphersuite Suite => Identifier.Suite;

    internal Element Hiding { get; }

    internal Element Binding { get; }

    public byte[] HidingCommitment => Hiding.ToBytes();

    public byte[] BindingCommitment => Binding.ToBytes();

    internal bool SameAs(SigningCommitments other)
        => Identifier.Equals(other.Identifier) && Hiding.ValueEquals(other.Hiding) && Binding.ValueEquals(other.Binding);

    public byte[] ToBytes()
    {
        var w = new WireWriter(WireKind.SigningCommitments, Suite);
        w.Id(Identifier);
        w.Element(Hiding);
        w.Element(Binding);
        return w.ToArray();
    }

    public static SigningCommitments FromBytes(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.SigningCommitments, suite, "signingCommitments");
        var c = new SigningCommitments(r.Id("identifier"), r.Element("hiding"), r.Element("binding"));
        r.End();
        return c;
    }
}

/// <summary>
/// What the coordinator sends every chosen signer in round two (RFC 9591 section 5.2): the message and the
/// commitment list, sorted by identifier, with no duplicates.
/// </summary>
public sealed class SigningPackage
{
    private readonly byte[] _message;

    public SigningPackage(ReadOnlySpan<byte> message, IEnumerable<SigningCommitments> commitments)
    {
        ArgumentNullException.ThrowIfNull(commitments);
        _message = message.ToArray();
        List<SigningCommitments> list = [.. commitments.OrderBy(c => c.Identifier)];
        if (list.Count < 2)
        {
            throw ThresholdErrors.Argument(nameof(commitments), "at least two signers are needed");
        }

        Suite = list[0].Suite;
        for (int i = 0; i < list.Count; i++)
        {
            if (!ReferenceEquals(list[i].Suite, Suite))
            {
                throw ThresholdErrors.WrongSuite(nameof(commitments), Suite);
            }

            if (i > 0 && list[i].Identifier.Equals(list[i - 1].Identifier))
            {
                throw ThresholdErrors.Format(nameof(commitments), $"participant {list[i].Identifier} appears twice");
            }
        }

        Commitments = list;
    }

    public FrostCiphersuite Suite { get; }

    public ReadOnlySpan<byte> Message => _message;

    /// <summary>The commitment list, sorted by identifier.</summary>
    public IReadOnlyList<SigningCommitments> Commitments { get; }

    public IReadOnlyList<Identifier> Signers => [.. Commitments.Select(c => c.Identifier)];

    internal SigningCommitments? Find(Identifier id) => Commitments.FirstOrDefault(c => c.Identifier.Equals(id));

    public byte[] ToBytes()
    {
        var w = new WireWriter(WireKind.SigningPackage, Suite);
        w.Bytes(_message);
        w.U16(Commitments.Count);
        foreach (SigningCommitments c in Commitments)
        {
            w.Id(c.Identifier);
            w.Element(c.Hiding);
            w.Element(c.Binding);
        }

        return w.ToArray();
    }

    public static SigningPackage FromBytes(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.SigningPackage, suite, "signingPackage");
        byte[] msg = r.Bytes().ToArray();
        int n = r.U16();
        var list = new List<SigningCommitments>(n);
        for (int i = 0; i < n; i++)
        {
            list.Add(new SigningCommitments(r.Id("identifier"), r.Element("hiding"), r.Element("binding")));
        }

        r.End();
        return new SigningPackage(msg, list);
    }
}

/// <summary>A signer's round-two output z_i (RFC 9591 section 5.2). Public; sent to the coordinator.</summary>
public sealed class SignatureShare
{
    internal SignatureShare(Identifier id, Scalar share)
    {
        Identifier = id;
        Value = share;
    }

    public Identifier Identifier { get; }

    public FrostCiphersuite Suite => Identifier.Suite;

    internal Scalar Value { get; }

    public byte[] ToBytes()
    {
        var w = new WireWriter(WireKind.SignatureShare, Suite);
        w.Id(Identifier);
        w.Scalar(Value);
        return w.ToArray();
    }

    public static SignatureShare FromBytes(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.SignatureShare, suite, "signatureShare");
        var s = new SignatureShare(r.Id("identifier"), r.Scalar("share"));
        r.End();
        return s;
    }
}
