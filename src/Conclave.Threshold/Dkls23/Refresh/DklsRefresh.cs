using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>
/// Proactive refresh of a DKLs23 key: zero-constant-term re-sharing of the Shamir shares (Herzberg et al.'s proactive
/// secret sharing, as in DKLs23 section 3's key-refresh remark), then a fresh pairwise setup, so the new key share has
/// new p(i), new pairwise OT state and zero-share seeds, and the next epoch. The group key, chain code and DKG session id
/// are unchanged. Presignatures made before the refresh carry the old epoch and are refused by <see cref="DklsSigner.Sign"/>.
/// <list type="number">
/// <item><see cref="Start"/>: every party deals f_i(x) = Σ_{k=1}^{t−1} a_k·x^k (f_i(0) = 0 by construction: the
/// constant term is not sent at all) and sends to each peer j the Feldman commitments C_k = a_k·G and f_i(j).</item>
/// <item><see cref="Finish"/>: checks each f_j(i)·G = Σ_k C_{j,k}·i^k (culprit j), forms p′(i) = p(i) + Σ_j f_j(i) and
/// every pk′_m = pk_m + Σ_j Σ_k C_{j,k}·m^k, and starts the pairwise setup of the new epoch. A dealer that sends
/// different commitments to different parties makes their public key packages differ, which the setup's digest
/// comparison refuses (<see cref="DklsFailure.PublicKeyMismatch"/>).</item>
/// </list>
/// </summary>
public static class DklsRefresh
{
    public static (DklsRefreshState State, IReadOnlyList<DklsMessage> Messages) Start(DklsKeyShare key, ReadOnlySpan<byte> refreshSessionId, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        ObjectDisposedException.ThrowIf(key.IsDisposed, key);
        random ??= SystemRandomSource.Instance;
        DklsSetup.CheckSid(refreshSessionId);
        int t = key.Public.Threshold;
        var coefficients = new Secp256k1Scalar[t - 1];
        for (int k = 0; k < coefficients.Length; k++)
        {
            coefficients[k] = Secp256k1Scalar.Random(random);
        }

        var state = new DklsRefreshState(key, refreshSessionId.ToArray());
        try
        {
            Secp256k1Point[] commitments = [.. coefficients.Select(Secp256k1Point.MultiplyGenerator)];
            var messages = new List<DklsMessage>();
            foreach (Identifier j in key.Public.Participants)
            {
                Secp256k1Scalar f = Evaluate(coefficients, Parties.X(j));
                if (j.Equals(key.Identifier))
                {
                    state.Own = f;
                    continue;
                }

                var w = new DklsWriter((33 * commitments.Length) + 32);
                foreach (Secp256k1Point c in commitments)
                {
                    w.Point(c);
                }

                messages.Add(new DklsMessage(DklsMessageKind.Refresh, refreshSessionId, key.Identifier, j, w.Scalar(f).ToArray()));
            }

            state.OwnCommitments = commitments;
            return (state, messages);
        }
        catch
        {
            state.Dispose();
            throw;
        }
        finally
        {
            Array.Clear(coefficients);
        }
    }

    /// <summary>Checks every peer's refresh share and starts the pairwise setup of the new epoch. Consumes the state.</summary>
    public static (DklsSetupState State, IReadOnlyList<DklsMessage> Messages) Finish(
        DklsRefreshState state, IReadOnlyList<DklsMessage> incoming, ReadOnlySpan<byte> setupSessionId, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        DklsKeyShare key = state.Key;
        Dictionary<Identifier, DklsMessage> byPeer = DklsMessage.Route(incoming, DklsMessageKind.Refresh, state.SessionId, key.Identifier, key.Public.Participants);
        using (state)
        {
            state.Consume();
            int t = key.Public.Threshold;
            Secp256k1Scalar me = Parties.X(key.Identifier);
            Secp256k1Scalar share = key.Share + state.Own;
            var commitments = new List<Secp256k1Point[]> { state.OwnCommitments };
            foreach ((Identifier j, DklsMessage m) in byPeer.OrderBy(kv => kv.Key))
            {
                var r = new DklsReader(m.Body, j, "refresh");
                if (m.Body.Length != (33 * (t - 1)) + 32)
                {
                    throw DklsErrors.Malformed(j, "refresh", $"{m.Body.Length} bytes; a {t}-of-n refresh carries {t - 1} commitments and one share");
                }

                var c = new Secp256k1Point[t - 1];
                for (int k = 0; k < c.Length; k++)
                {
                    c[k] = r.Point($"commitment[{k + 1}]");
                }

                Secp256k1Scalar f = r.Scalar("share");
                r.End();
                if (Secp256k1Point.MultiplyGenerator(f) != EvaluateCommitment(c, me))
                {
                    throw DklsErrors.Check(DklsFailure.InvalidRefreshShare, j, "the refresh share does not match its dealer's commitments");
                }

                share += f;
                commitments.Add(c);
            }

            var shares = new SortedDictionary<Identifier, Secp256k1Point>();
            foreach ((Identifier m, Secp256k1Point pk) in key.Public.Shares)
            {
                Secp256k1Scalar x = Parties.X(m);
                shares[m] = Secp256k1Point.Sum([pk, .. commitments.Select(c => EvaluateCommitment(c, x))]);
            }

            DklsPublicKey next = key.Public.NextEpoch(shares);
            return DklsSetup.Start(key.Identifier, share, next, setupSessionId, random ?? SystemRandomSource.Instance);
        }
    }

    /// <summary>Σ_{k≥1} a_k·x^k (Horner, no constant term).</summary>
    private static Secp256k1Scalar Evaluate(Secp256k1Scalar[] a, Secp256k1Scalar x)
    {
        Secp256k1Scalar acc = Secp256k1Scalar.Zero;
        for (int k = a.Length - 1; k >= 0; k--)
        {
            acc = (acc + a[k]) * x;
        }

        return acc;
    }

    /// <summary>Σ_{k≥1} C_k·x^k for a public x.</summary>
    private static Secp256k1Point EvaluateCommitment(Secp256k1Point[] c, Secp256k1Scalar x)
    {
        var terms = new Secp256k1Point[c.Length];
        Secp256k1Scalar power = x;
        for (int k = 0; k < c.Length; k++)
        {
            terms[k] = c[k].MultiplyPublic(power);
            power *= x;
        }

        return Secp256k1Point.Sum(terms);
    }
}

/// <summary>A party's secret refresh state (its own evaluation f_i(i)). Consumed by <see cref="DklsRefresh.Finish"/>.</summary>
public sealed class DklsRefreshState : IDisposable
{
    private readonly SecretBuffer _own = SecretBuffer.Allocate(32);
    private int _consumed;

    internal DklsRefreshState(DklsKeyShare key, byte[] sid)
    {
        Key = key;
        SessionId = sid;
    }

    internal DklsKeyShare Key { get; }

    internal byte[] SessionId { get; }

    internal Secp256k1Point[] OwnCommitments { get; set; } = [];

    internal Secp256k1Scalar Own
    {
        get => Secp256k1Scalar.FromBytes(_own.ReadOnlySpan);
        set => value.WriteTo(_own.Span);
    }

    internal void Consume()
    {
        if (Interlocked.Exchange(ref _consumed, 1) != 0)
        {
            throw ThresholdErrors.Consumed("this refresh state");
        }
    }

    public void Dispose() => _own.Dispose();
}
