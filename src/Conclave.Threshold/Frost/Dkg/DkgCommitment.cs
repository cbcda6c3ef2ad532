using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>
/// A dealer's first broadcast (<see cref="Dkg.Commit"/>), sent and relayed to every participant before any
/// round-one package is revealed, so that no dealer can choose its contribution after seeing the others'
/// (commit-then-reveal; the FROST paper's Figure 1 assumes a rushing adversary cannot do this only because its
/// round one is a single simultaneous broadcast, which a relaying coordinator cannot guarantee). It holds:
/// <list type="bullet">
/// <item><see cref="PackageHash"/>: SHA-256 of (domain, session digest, dealer id, the dealer's encoded round-one
/// package — Feldman commitments and proof of knowledge —, <see cref="SigningKey"/>).</item>
/// <item><see cref="ContributionHash"/>: SHA-256 of (domain, session digest, dealer id, the dealer's 32-byte
/// chain-code contribution; empty for refresh and reshare, which keep the old chain code). The contribution is
/// revealed only inside the point-to-point round-two messages (sealed by the node layer), never in a broadcast.</item>
/// <item><see cref="SigningKey"/>: X = x·G, a per-run key under which the dealer signs each of its round-two
/// messages, so that a receiver's complaint is verifiable by anyone (<see cref="Dkg.VerifyComplaint"/>).</item>
/// </list>
/// Both hashes are separate because the package is revealed in round one and the contribution only in round two.
/// Every commitment a participant saw is hashed into its echo digest, so participants shown different commitment
/// sets fail the echo check.
/// </summary>
public sealed class DkgCommitment
{
    internal const int HashSizeInBytes = 32;
    private readonly byte[] _packageHash;
    private readonly byte[] _contributionHash;

    internal DkgCommitment(Identifier sender, ReadOnlySpan<byte> packageHash, ReadOnlySpan<byte> contributionHash, Element signingKey)
    {
        Sender = sender;
        _packageHash = packageHash.ToArray();
        _contributionHash = contributionHash.ToArray();
        SigningKey = signingKey;
    }

    public Identifier Sender { get; }

    public FrostCiphersuite Suite => Sender.Suite;

    /// <summary>The hash binding the dealer's round-one package (checked in <see cref="Dkg.Round2"/>).</summary>
    public ReadOnlySpan<byte> PackageHash => _packageHash;

    /// <summary>The hash binding the dealer's chain-code contribution (checked in <see cref="Dkg.Finish"/>).</summary>
    public ReadOnlySpan<byte> ContributionHash => _contributionHash;

    /// <summary>The dealer's per-run key for signing its round-two messages.</summary>
    internal Element SigningKey { get; }

    public byte[] ToBytes()
    {
        var w = new WireWriter(WireKind.DkgCommitment, Suite);
        w.Id(Sender);
        w.Raw(_packageHash);
        w.Raw(_contributionHash);
        w.Element(SigningKey);
        return w.ToArray();
    }

    /// <summary>Parses and validates the encoding (the signing key a valid point, not the identity).</summary>
    public static DkgCommitment FromBytes(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.DkgCommitment, suite, "dkgCommitment");
        Identifier sender = r.Id("sender");
        ReadOnlySpan<byte> package = r.Raw(HashSizeInBytes);
        ReadOnlySpan<byte> contribution = r.Raw(HashSizeInBytes);
        var c = new DkgCommitment(sender, package, contribution, r.Element("signingKey"));
        r.End();
        return c;
    }

    public override string ToString() => $"DkgCommitment({Sender})";
}
