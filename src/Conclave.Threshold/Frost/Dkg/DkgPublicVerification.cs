using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>The outcome of checking a run from its public transcript: <see cref="Ok"/>, or the first reason it fails.</summary>
public sealed record DkgPublicCheck(bool Ok, string Reason)
{
    internal static DkgPublicCheck Pass { get; } = new(true, "ok");

    internal static DkgPublicCheck Fail(string reason) => new(false, reason);
}

public static partial class Dkg
{
    /// <summary>
    /// Checks a DKG, refresh or reshare from public data only (docs/ROTATION.md "Verifying a rotation"): exactly one
    /// round-one broadcast per dealer; each with the exact commitment length and, for key generation and reshare, a valid
    /// proof of knowledge of its constant term bound to the session and dealer (FROST paper Figure 1, round 1 step 5 /
    /// round 2 step 1); for a refresh, no constant term at all (the refresh polynomial is zero at 0, so the group key
    /// cannot move); for a reshare, each constant term equal to the dealer's Lagrange-weighted old verifying share; then
    /// that <paramref name="result"/> is exactly the key these commitments define: same threshold and participants,
    /// group key (unchanged for refresh and reshare), and every verifying share PK_r = Σ_k A_k·r^k (+ the old PK_r for a
    /// refresh). Never throws for bad data: the reason names the dealer or participant.
    /// </summary>
    public static DkgPublicCheck VerifyPublicRun(DkgSession session, IReadOnlyCollection<DkgRound1Package> broadcasts, PublicKeyPackage result)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(broadcasts);
        ArgumentNullException.ThrowIfNull(result);
        FrostCiphersuite suite = session.Suite;
        if (!ReferenceEquals(result.Suite, suite))
        {
            return DkgPublicCheck.Fail("the new public key package is of another ciphersuite");
        }

        var byDealer = new SortedDictionary<Identifier, DkgRound1Package>();
        foreach (DkgRound1Package p in broadcasts)
        {
            if (!ReferenceEquals(p.Suite, suite) || !session.Dealers.Contains(p.Sender))
            {
                return DkgPublicCheck.Fail($"a broadcast from {p.Sender}, who is not a dealer of this run");
            }

            if (!byDealer.TryAdd(p.Sender, p))
            {
                return DkgPublicCheck.Fail($"two broadcasts from dealer {p.Sender}");
            }
        }

        if (session.Dealers.FirstOrDefault(d => !byDealer.ContainsKey(d)) is { } missing)
        {
            return DkgPublicCheck.Fail($"no broadcast from dealer {missing}");
        }

        var commitments = new Dictionary<Identifier, IReadOnlyList<Element?>>();
        foreach ((Identifier dealer, DkgRound1Package p) in byDealer)
        {
            if (session.Kind == DkgKind.Refresh && (p.Commitment.Count != session.CommitmentCount || p.ProofR is not null))
            {
                return DkgPublicCheck.Fail($"refresh dealer {dealer}'s polynomial has a constant term (a refresh must add a polynomial that is zero at 0)");
            }

            if (!CheckRound1(session, p))
            {
                return DkgPublicCheck.Fail($"dealer {dealer}: wrong commitment length or invalid proof of knowledge");
            }

            if (session.Kind == DkgKind.Reshare
                && !p.Commitment[0].ValueEquals(session.OldKey!.VerifyingShare(dealer) * Polynomials.Lagrange(suite, session.Dealers, dealer)))
            {
                return DkgPublicCheck.Fail($"reshare dealer {dealer}'s constant term is not its weighted old verifying share");
            }

            commitments[dealer] = session.Kind == DkgKind.Refresh ? [null, .. p.Commitment] : [.. p.Commitment];
        }

        PublicKeyPackage expected;
        try
        {
            ReadOnlySpan<byte> chainCode = session.Kind == DkgKind.KeyGeneration ? result.ChainCode : session.OldKey!.ChainCode;
            expected = BuildPublicKey(session, AggregateCommitments(session, commitments), chainCode);
        }
        catch (ThresholdProtocolException e)
        {
            return DkgPublicCheck.Fail(e.Message);
        }

        if (session.OldKey is { } old && !result.GroupKey.ValueEquals(old.GroupKey))
        {
            return DkgPublicCheck.Fail("the group key changed");
        }

        if (!result.GroupKey.ValueEquals(expected.GroupKey))
        {
            return DkgPublicCheck.Fail("the group key is not the one the dealers' commitments define");
        }

        if (result.Threshold != expected.Threshold || !result.Participants.SequenceEqual(expected.Participants))
        {
            return DkgPublicCheck.Fail("the threshold or participants differ from the run's");
        }

        if (expected.Participants.FirstOrDefault(r => !result.VerifyingShare(r).ValueEquals(expected.VerifyingShare(r))) is { } wrong)
        {
            return DkgPublicCheck.Fail($"the verifying share of participant {wrong} does not match the commitments");
        }

        return session.Kind != DkgKind.KeyGeneration && !result.ChainCode.SequenceEqual(session.OldKey!.ChainCode)
            ? DkgPublicCheck.Fail("the chain code changed")
            : DkgPublicCheck.Pass;
    }
}
