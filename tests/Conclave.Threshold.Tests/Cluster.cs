using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests;

/// <summary>Test driver: runs whole protocols among in-process participants, with hooks to tamper with messages.</summary>
internal static class Cluster
{
    internal static byte[] Sid(string name) => System.Text.Encoding.UTF8.GetBytes(("session:" + name).PadRight(16, '.'));

    /// <summary>Runs round one for every participant; then round two; then finish; then confirmations.</summary>
    internal static Dictionary<Identifier, KeyPackage> Run(
        DkgSession session,
        IReadOnlyDictionary<Identifier, KeyPackage>? current,
        IRandomSource random,
        Func<Identifier, Identifier, DkgRound1Package, DkgRound1Package>? tamperBroadcast = null)
    {
        IEnumerable<Identifier> everyone = session.Dealers.Union(session.Receivers);
        var r1 = everyone.ToDictionary(id => id, id => Dkg.Round1(session, id, current?.GetValueOrDefault(id), random));
        var r2 = new Dictionary<Identifier, DkgRound2Secret>();
        var mail = new Dictionary<Identifier, List<DkgRound2Package>>();
        foreach ((Identifier me, DkgRound1Secret s) in r1)
        {
            var seen = r1.Values.Where(o => o.Package is not null && !o.Self.Equals(me))
                .Select(o => tamperBroadcast is null ? o.Package! : tamperBroadcast(o.Self, me, o.Package!))
                .ToList();
            (DkgRound2Secret secret, IReadOnlyList<DkgRound2Package> outgoing) = Dkg.Round2(s, seen);
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

        return pending.ToDictionary(kv => kv.Key, kv => kv.Value.Complete(confirmations));
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
