using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>
/// A secret value in transit during repair (a δ piece from helper to helper, or a σ sum from helper to the
/// participant being repaired). Secret: the node layer encrypts it to <see cref="Recipient"/>.
/// </summary>
public sealed class RepairMessage : IDisposable
{
    private readonly SecretBuffer _value;

    internal RepairMessage(bool isSigma, Identifier sender, Identifier recipient, Identifier lost, Scalar value)
    {
        IsSigma = isSigma;
        Sender = sender;
        Recipient = recipient;
        Lost = lost;
        _value = SecretBuffer.Allocate(sender.Suite.ScalarSizeInBytes);
        value.WriteTo(_value.Span);
    }

    /// <summary>False for a step-one δ piece, true for a step-two σ sum.</summary>
    public bool IsSigma { get; }

    public Identifier Sender { get; }

    public Identifier Recipient { get; }

    /// <summary>The participant whose share is being rebuilt.</summary>
    public Identifier Lost { get; }

    public FrostCiphersuite Suite => Sender.Suite;

    internal Scalar Value
    {
        get
        {
            ObjectDisposedException.ThrowIf(_value.IsDisposed, this);
            _ = Suite.TryReadScalar(_value.ReadOnlySpan, out Scalar? s);
            return s!;
        }
    }

    public SecretBuffer Export()
    {
        var w = new WireWriter(IsSigma ? WireKind.RepairSigma : WireKind.RepairDelta, Suite);
        w.Id(Sender);
        w.Id(Recipient);
        w.Id(Lost);
        w.Raw(_value.ReadOnlySpan);
        return w.ToSecret();
    }

    public static RepairMessage Import(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        bool sigma = encoded.Length > 1 && encoded[1] == (byte)WireKind.RepairSigma;
        var r = new WireReader(encoded, sigma ? WireKind.RepairSigma : WireKind.RepairDelta, suite, "repairMessage");
        var m = new RepairMessage(sigma, r.Id("sender"), r.Id("recipient"), r.Id("lost"), r.Scalar("value"));
        r.End();
        return m;
    }

    public void Dispose() => _value.Dispose();
}

/// <summary>
/// Repairable threshold scheme (Laing and Stinson, "A Survey and Refinement of Repairable Threshold Schemes",
/// 2017, section 4; as in the ZcashFoundation frost repairable module): at least t helpers rebuild the share of a
/// participant who lost it, without any helper revealing its own share and without reconstructing the key.
/// <list type="number">
/// <item>Each helper i computes δ_i = λ_i(r)·s_i (Lagrange coefficient at the lost participant's x = r over the
/// helper set) and splits it into random additive pieces δ_ij, one per helper j.</item>
/// <item>Each helper j sums the pieces it received: σ_j = Σ_i δ_ij, and sends σ_j to the lost participant.</item>
/// <item>The lost participant adds the σ_j: s_r = Σ σ_j = Σ λ_i(r)·s_i = f(r), checked against PK_r on record.</item>
/// </list>
/// </summary>
public static class Repair
{
    /// <summary>Step one for helper <paramref name="helper"/>: its δ pieces, one per helper (its own included).</summary>
    public static IReadOnlyList<RepairMessage> Step1(KeyPackage helper, IReadOnlyList<Identifier> helpers, Identifier lost, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(helper);
        ArgumentNullException.ThrowIfNull(lost);
        random ??= SystemRandomSource.Instance;
        FrostCiphersuite suite = helper.Suite;
        CheckHelpers(helper.PublicKeyPackage, helpers, lost);
        if (!helpers.Contains(helper.Identifier))
        {
            throw ThresholdErrors.Argument(nameof(helper), "this participant is not among the helpers");
        }

        Scalar delta = Polynomials.LagrangeAt(suite, helpers, helper.Identifier, lost.Value) * helper.Share;
        var pieces = new List<RepairMessage>(helpers.Count);
        Scalar sum = suite.ScalarZero;
        for (int j = 0; j < helpers.Count; j++)
        {
            Scalar piece = j < helpers.Count - 1 ? suite.RandomScalar(random) : delta - sum;
            sum += piece;
            pieces.Add(new RepairMessage(false, helper.Identifier, helpers[j], lost, piece));
        }

        return pieces;
    }

    /// <summary>Step two for helper <paramref name="helper"/>: σ_j from the δ pieces addressed to it (one from every helper).</summary>
    public static RepairMessage Step2(KeyPackage helper, IReadOnlyList<Identifier> helpers, Identifier lost, IReadOnlyCollection<RepairMessage> received)
    {
        ArgumentNullException.ThrowIfNull(helper);
        ArgumentNullException.ThrowIfNull(received);
        CheckHelpers(helper.PublicKeyPackage, helpers, lost);
        CheckSenders(received, helpers, helper.Identifier, lost, isSigma: false);
        Scalar sigma = SumScalars(helper.Suite, [.. received.Select(m => m.Value)]);
        return new RepairMessage(true, helper.Identifier, lost, lost, sigma);
    }

    /// <summary>Step three for the lost participant: s_r = Σ σ_j, verified against its verifying share; returns its key package.</summary>
    public static KeyPackage Step3(PublicKeyPackage key, IReadOnlyList<Identifier> helpers, Identifier lost, IReadOnlyCollection<RepairMessage> sigmas)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(sigmas);
        CheckHelpers(key, helpers, lost);
        CheckSenders(sigmas, helpers, lost, lost, isSigma: true);
        Scalar share = SumScalars(key.Suite, [.. sigmas.Select(m => m.Value)]);
        if (!key.Suite.BaseMul(share).ValueEquals(key.VerifyingShare(lost)))
        {
            throw ThresholdErrors.Protocol(ThresholdFailure.InvalidRepairedShare, [], "the repaired share does not match the verifying share on record");
        }

        return new KeyPackage(lost, share, key);
    }

    /// <summary>
    /// The repaired participant's public proof that it holds the share behind its verifying share PK_r, bound to the
    /// repair run: a Schnorr proof of knowledge of s_r (R = k·G, c = HDKG(transcript: domain, run id, public key
    /// package, participant, PK_r, R), z = k + c·s_r; the same construction as the DKG proof of knowledge, FROST paper
    /// Figure 1, round 1 step 2, with the run in place of the DKG context). Encoding: R ‖ z. Zero-knowledge: it reveals
    /// nothing about s_r beyond PK_r, which is public.
    /// </summary>
    public static byte[] ProveRepaired(KeyPackage repaired, ReadOnlySpan<byte> runId, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(repaired);
        random ??= SystemRandomSource.Instance;
        FrostCiphersuite suite = repaired.Suite;
        Scalar k = suite.RandomScalar(random);
        Element r = suite.BaseMul(k);
        Scalar c = RepairChallenge(repaired.PublicKeyPackage, repaired.Identifier, runId, r);
        Scalar z = k + (c * repaired.Share);
        byte[] proof = new byte[suite.ElementSizeInBytes + suite.ScalarSizeInBytes];
        r.WriteTo(proof.AsSpan(0, suite.ElementSizeInBytes));
        z.WriteTo(proof.AsSpan(suite.ElementSizeInBytes));
        return proof;
    }

    /// <summary>
    /// Checks a repair from public data only (docs/ROTATION.md "Verifying a rotation"): at least t distinct helpers, all
    /// participants of <paramref name="key"/> other than <paramref name="lost"/>, which is a participant; and the
    /// repaired participant's proof (<see cref="ProveRepaired"/>) that it knows the discrete log of its verifying share
    /// in <paramref name="key"/> (whose verifying shares <see cref="PublicKeyPackage.FromBytes"/> already checked lie on
    /// one polynomial of degree t−1 through the group key, so the rebuilt share is that polynomial's value at r).
    /// Never throws for bad data.
    /// </summary>
    public static DkgPublicCheck VerifyPublicRun(PublicKeyPackage key, IReadOnlyList<Identifier> helpers, Identifier lost, ReadOnlySpan<byte> runId, ReadOnlySpan<byte> proof)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(helpers);
        ArgumentNullException.ThrowIfNull(lost);
        FrostCiphersuite suite = key.Suite;
        if (!key.Contains(lost))
        {
            return DkgPublicCheck.Fail($"the repaired participant {lost} is not a participant of the key");
        }

        if (helpers.Distinct().Count() != helpers.Count || helpers.Count < key.Threshold)
        {
            return DkgPublicCheck.Fail($"a repair needs at least {key.Threshold} distinct helpers; it names {helpers.Count}");
        }

        if (helpers.FirstOrDefault(h => h.Equals(lost) || !key.Contains(h)) is { } bad)
        {
            return DkgPublicCheck.Fail($"helper {bad} is the repaired participant or not a participant of the key");
        }

        if (proof.Length != suite.ElementSizeInBytes + suite.ScalarSizeInBytes
            || !suite.TryReadElement(proof[..suite.ElementSizeInBytes], out Element? r)
            || !suite.TryReadScalar(proof[suite.ElementSizeInBytes..], out Scalar? z))
        {
            return DkgPublicCheck.Fail($"participant {lost}'s proof of its repaired share is malformed");
        }

        Element y = key.VerifyingShare(lost);
        Scalar c = RepairChallenge(key, lost, runId, r);
        return suite.MulAddBasePublic(y, -c, z).ValueEquals(r)
            ? DkgPublicCheck.Pass
            : DkgPublicCheck.Fail($"participant {lost}'s proof does not match its verifying share (it does not hold the repaired share)");
    }

    private static Scalar RepairChallenge(PublicKeyPackage key, Identifier lost, ReadOnlySpan<byte> runId, Element r) =>
        key.Suite.HDkg(new Transcript("Conclave/FROST/repair-proof-of-knowledge/v1")
            .Append("run", runId)
            .Append("key", key.ToBytes())
            .Append("participant", lost.Encoded)
            .Append("verifying-share", key.VerifyingShare(lost).ToBytes())
            .Append("R", r.ToBytes())
            .ToArray());

    internal static Scalar SumScalars(FrostCiphersuite suite, IReadOnlyList<Scalar> values)
    {
        Scalar acc = suite.ScalarZero;
        foreach (Scalar v in values)
        {
            acc += v;
        }

        return acc;
    }

    private static void CheckHelpers(PublicKeyPackage key, IReadOnlyList<Identifier> helpers, Identifier lost)
    {
        ArgumentNullException.ThrowIfNull(helpers);
        Polynomials.EnsureDistinct(helpers, nameof(helpers));
        if (helpers.Count < key.Threshold || helpers.Any(h => !key.Contains(h)) || helpers.Contains(lost) || !key.Contains(lost))
        {
            throw ThresholdErrors.Argument(nameof(helpers), "at least t participants of the key, other than the lost one, must help");
        }
    }

    private static void CheckSenders(IReadOnlyCollection<RepairMessage> received, IReadOnlyList<Identifier> helpers, Identifier recipient, Identifier lost, bool isSigma)
    {
        var seen = new HashSet<Identifier>();
        var culprits = new List<Identifier>();
        foreach (RepairMessage m in received)
        {
            if (m.IsSigma != isSigma || !m.Recipient.Equals(recipient) || !m.Lost.Equals(lost) || !helpers.Contains(m.Sender) || !seen.Add(m.Sender))
            {
                culprits.Add(m.Sender);
            }
        }

        culprits.AddRange(helpers.Where(h => !seen.Contains(h)));
        if (culprits.Count > 0)
        {
            throw ThresholdErrors.Protocol(ThresholdFailure.UnexpectedParticipant, [.. culprits.Distinct()], "repair messages missing, duplicated or misaddressed");
        }
    }
}
