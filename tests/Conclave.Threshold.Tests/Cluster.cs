using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests;

/// <summary>Test driver: runs whole protocols among in-process participants, with hooks to tamper with messages.</summary>
internal static class Cluster
{
    internal static byte[] Sid(string name) => System.Text.Encoding.UTF8.GetBytes(("session:" + name).PadRight(16, '.'));

    /// <summary>What a relaying coordinator sees of a run (commitments, round-one broadcasts, confirmations) and its keys.</summary>
    internal sealed record DkgRun(List<DkgCommitment> Commitments, List<DkgRound1Package> Broadcasts, List<DkgConfirmation> Confirmations, Dictionary<Identifier, KeyPackage> Keys);

    /// <summary>Runs the commit step for every participant, then round one, round two, finish and confirmations.</summary>
    internal static Dictionary<Identifier, KeyPackage> Run(
        DkgSession session,
        IReadOnlyDictionary<Identifier, KeyPackage>? current,
        IRandomSource random,
        Func<Identifier, Identifier, DkgRound1Package, DkgRound1Package>? tamperBroadcast = null,
        Func<Identifier, Identifier, DkgCommitment, DkgCommitment>? tamperCommitment = null)
        => RunDetailed(session, current, random, tamperBroadcast, tamperCommitment).Keys;

    /// <param name="contribution">Tests only: a fixed chain-code contribution per dealer instead of a random one.</param>
    internal static DkgRun RunDetailed(
        DkgSession session,
        IReadOnlyDictionary<Identifier, KeyPackage>? current,
        IRandomSource random,
        Func<Identifier, Identifier, DkgRound1Package, DkgRound1Package>? tamperBroadcast = null,
        Func<Identifier, Identifier, DkgCommitment, DkgCommitment>? tamperCommitment = null,
        Func<Identifier, byte[]>? contribution = null)
    {
        IEnumerable<Identifier> everyone = session.Dealers.Union(session.Receivers).Order();
        var c = everyone.ToDictionary(id => id, id => Dkg.CommitCore(session, id, current?.GetValueOrDefault(id), random, contribution is null ? default : contribution(id)));
        List<DkgCommitment> commitments = [.. c.Values.Select(s => s.Commitment).OfType<DkgCommitment>()];
        var r1 = c.ToDictionary(kv => kv.Key, kv => Dkg.Round1(kv.Value, [.. commitments
            .Where(o => !o.Sender.Equals(kv.Key))
            .Select(o => tamperCommitment is null ? o : tamperCommitment(o.Sender, kv.Key, o))]));
        List<DkgRound1Package> broadcasts = [.. r1.Values.Select(s => s.Package).OfType<DkgRound1Package>()];
        var r2 = new Dictionary<Identifier, DkgRound2Secret>();
        var mail = new Dictionary<Identifier, List<DkgRound2Package>>();
        foreach ((Identifier me, DkgRound1Secret s) in r1)
        {
            var seen = broadcasts.Where(o => !o.Sender.Equals(me))
                .Select(o => tamperBroadcast is null ? o : tamperBroadcast(o.Sender, me, o))
                .ToList();
            (DkgRound2Secret secret, IReadOnlyList<DkgRound2Package> outgoing) = Dkg.Round2(s, seen, random);
            r2[me] = secret;
            foreach (DkgRound2Package p in outgoing)
            {
                if (!mail.TryGetValue(p.Recipient, out List<DkgRound2Package>? box))
                {
                    mail[p.Recipient] = box = [];
                }

                box.Add(p);
            }
        }

        var pending = session.Receivers.ToDictionary(id => id, id => Dkg.Finish(r2[id], mail.GetValueOrDefault(id) ?? [], random));
        var confirmations = pending.Values.Select(p => p.Confirmation).ToList();
        foreach (Identifier dealerOnly in session.Dealers.Except(session.Receivers))
        {
            // A leaving dealer checks every new member's confirmation before it may delete its old share.
            PublicKeyPackage seen = Dkg.ConfirmAsDealer(r2[dealerOnly], confirmations);
            if (!seen.PublicEquals(pending.Values.First().PublicKeyPackage))
            {
                throw new InvalidOperationException("a leaving dealer computed another key");
            }

            Assert.Throws<ThresholdProtocolException>(() => Dkg.CheckConfirmations(session, seen, Dkg.ConfirmationDigest(session, r2[dealerOnly].EchoDigest, seen), confirmations.Skip(1).ToList(), dealerOnly));
        }

        var keys = pending.ToDictionary(kv => kv.Key, kv => kv.Value.Complete(confirmations));
        return new DkgRun(commitments, broadcasts, confirmations, keys);
    }

    /// <summary>A full signature with the given signers; returns the signature.</summary>
    internal static byte[] Sign(IReadOnlyList<KeyPackage> signers, PublicKeyPackage key, byte[] message, IRandomSource random)
    {
        var nonces = signers.Select(k => FrostSigner.Commit(k, random)).ToList();
        var package = new SigningPackage(message, nonces.Select(n => n.Commitments));
        var shares = signers.Select((k, i) => FrostSigner.Sign(package, nonces[i], k)).ToList();
        return FrostAggregator.Aggregate(package, shares, key);
    }

    internal static void DisposeAll(IEnumerable<KeyPackage> keys)
    {
        foreach (KeyPackage k in keys)
        {
            k.Dispose();
        }
    }
}
