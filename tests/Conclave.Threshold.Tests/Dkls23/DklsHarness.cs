using System.Text;
using Conclave.Crypto.Randomness;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests.Dkls23;

/// <summary>Runs DKLs23 among in-process parties, with hooks that tamper with real protocol messages in flight.</summary>
internal static class DklsHarness
{
    internal static FrostCiphersuite K1 { get; } = FrostCiphersuite.All.First(s => s.SchemeName == "frost-secp256k1");

    internal static byte[] Sid(string name) => Encoding.UTF8.GetBytes(("dkls23:" + name).PadRight(16, '.'));

    internal static Identifier Id(int i) => Identifier.FromInt(K1, i);

    /// <summary>Trusted-dealer FROST secp256k1 shares (the DKG path is tested separately) plus the pairwise setup.</summary>
    internal static Dictionary<Identifier, DklsKeyShare> Keygen(int t, int n, IRandomSource random, string label = "key")
    {
        using DealerOutput d = TrustedDealer.Generate(K1, t, n, random);
        return Setup(d.KeyPackages, Sid("dkg:" + label), Sid("setup:" + label), random);
    }

    internal static Dictionary<Identifier, DklsKeyShare> Setup(
        IEnumerable<KeyPackage> frostKeys, byte[] dkgSid, byte[] setupSid, IRandomSource random,
        Func<DklsMessage, DklsMessage>? tamper1 = null, Func<DklsMessage, DklsMessage>? tamper2 = null)
    {
        var states = new Dictionary<Identifier, DklsSetupState>();
        var mail1 = new List<DklsMessage>();
        foreach (KeyPackage k in frostKeys)
        {
            (DklsSetupState s, IReadOnlyList<DklsMessage> m) = DklsSetup.Start(k, dkgSid, setupSid, random);
            states[k.Identifier] = s;
            mail1.AddRange(m.Select(x => tamper1 is null ? x : tamper1(x)));
        }

        return FinishSetup(states, mail1, tamper2);
    }

    internal static Dictionary<Identifier, DklsKeyShare> FinishSetup(
        Dictionary<Identifier, DklsSetupState> states, List<DklsMessage> mail1, Func<DklsMessage, DklsMessage>? tamper2 = null)
    {
        var mail2 = new List<DklsMessage>();
        foreach ((Identifier id, DklsSetupState s) in states)
        {
            mail2.AddRange(DklsSetup.Round2(s, For(mail1, id)).Select(x => tamper2 is null ? x : tamper2(x)));
        }

        return states.ToDictionary(kv => kv.Key, kv => DklsSetup.Finish(kv.Value, For(mail2, kv.Key)));
    }

    /// <summary>Every other signer's round-one broadcast commitment, as an honest relay delivers them to <paramref name="to"/>.</summary>
    /// <paramref name="tamper"/> sees (sender's state, recipient, value) and returns what the recipient gets.
    internal static Dictionary<Identifier, byte[]> BroadcastsFor(IEnumerable<DklsSignRound1State> states, Identifier to, Func<DklsSignRound1State, Identifier, byte[], byte[]>? tamper = null) =>
        states.Where(s => !s.Identifier.Equals(to)).ToDictionary(s => s.Identifier, s => tamper is null ? s.Broadcast : tamper(s, to, s.Broadcast));

    internal static List<DklsMessage> For(IEnumerable<DklsMessage> all, Identifier to) => [.. all.Where(m => m.To.Equals(to))];

    /// <summary>Rounds one to three for <paramref name="signers"/>; tamper hooks see every message of rounds one and two.</summary>
    internal static Dictionary<Identifier, DklsPresignature> Presign(
        IReadOnlyDictionary<Identifier, DklsKeyShare> keys, IReadOnlyList<Identifier> signers, byte[] sid, IRandomSource random,
        IReadOnlyList<uint>? path = null, Func<DklsMessage, DklsMessage>? tamper1 = null, Func<DklsMessage, DklsMessage>? tamper2 = null,
        Func<DklsSignRound1State, Identifier, byte[], byte[]>? tamperBroadcast = null)
    {
        var r1 = new Dictionary<Identifier, DklsSignRound1State>();
        var mail1 = new List<DklsMessage>();
        foreach (Identifier i in signers)
        {
            (DklsSignRound1State s, IReadOnlyList<DklsMessage> m) = DklsSigner.Round1(keys[i], sid, signers, path, random);
            r1[i] = s;
            mail1.AddRange(m.Select(x => tamper1 is null ? x : tamper1(x)));
        }

        // What each signer receives of the others' round-one broadcasts, read before round two consumes any state.
        var inbox = signers.ToDictionary(i => i, i => BroadcastsFor(r1.Values, i, tamperBroadcast));
        var r2 = new Dictionary<Identifier, DklsSignRound2State>();
        var mail2 = new List<DklsMessage>();
        foreach (Identifier i in signers)
        {
            (DklsSignRound2State s, IReadOnlyList<DklsMessage> m) = DklsSigner.Round2(r1[i], For(mail1, i), inbox[i], random);
            r2[i] = s;
            mail2.AddRange(m.Select(x => tamper2 is null ? x : tamper2(x)));
        }

        return signers.ToDictionary(i => i, i => DklsSigner.Round3(r2[i], For(mail2, i)));
    }

    internal static DklsSignature Sign(
        IReadOnlyDictionary<Identifier, DklsKeyShare> keys, IReadOnlyList<Identifier> signers, byte[] sid, byte[] digest, IRandomSource random,
        IReadOnlyList<uint>? path = null)
    {
        Dictionary<Identifier, DklsPresignature> pre = Presign(keys, signers, sid, random, path);
        return Combine(keys, pre, digest, path);
    }

    internal static DklsSignature Combine(
        IReadOnlyDictionary<Identifier, DklsKeyShare> keys, Dictionary<Identifier, DklsPresignature> pre, byte[] digest,
        IReadOnlyList<uint>? path = null, Func<DklsSignatureShare, DklsSignatureShare>? tamper = null)
    {
        var shares = pre.Select(kv => DklsSigner.Sign(kv.Value, keys[kv.Key], digest, path)).Select(s => tamper is null ? s : tamper(s)).ToList();
        return DklsCombiner.Combine(pre.Values.First().Context, digest, shares);
    }

    internal static void DisposeAll(IReadOnlyDictionary<Identifier, DklsKeyShare> keys)
    {
        foreach (DklsKeyShare k in keys.Values)
        {
            k.Dispose();
        }
    }
}
