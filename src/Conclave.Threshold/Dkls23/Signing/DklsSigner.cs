using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Dkls23.Ot;
using Conclave.Threshold.Dkls23.Vole;
using Conclave.Threshold.Dkls23.ZeroSharing;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>
/// The signer's steps of DKLs23 threshold ECDSA (Doerner, Kondi, Lee, shelat, ePrint 2023/765, Protocol 3.6
/// "Three-round threshold ECDSA signing"). Rounds one and two do not depend on the message: <see cref="Round3"/>
/// ends with a <see cref="DklsPresignature"/>, and <see cref="Sign"/> is the one message-dependent step.
/// Every step validates everything before it consumes its state; a dropped message (wrong session, kind, recipient,
/// duplicate or stranger) leaves the state usable; any other failure consumes it.
/// </summary>
public static class DklsSigner
{
    private const int Round1BodySize = 32 + RandomVole.BobMessageSize;
    private const int Round2FixedSize = 33 + 32 + 33 + 32 + 33 + 33;

    /// <summary>
    /// Round one (Protocol 3.6, round 1): sample the instance key r_i and the inversion mask φ_i, commit to
    /// R_i = r_i·G towards every peer (the commitment is bound to the session id and the ordered pair), and start, as
    /// Bob, the random VOLE with every peer. Every transcript of the session uses H(sid, public key package digest,
    /// setup session id), so the DKG session id, the epoch and the pairwise setup are bound into signing. The derivation <paramref name="path"/> is fixed here, before any R_j is
    /// revealed (Groth–Shoup, ePrint 2021/1330, section 5): the lowest signer adds the CKDpub tweak δ to its additive share.
    /// The signer set must have exactly t members, include this party, and name no duplicate, stranger or banned peer.
    /// </summary>
    public static (DklsSignRound1State State, IReadOnlyList<DklsMessage> Messages) Round1(
        DklsKeyShare key, ReadOnlySpan<byte> sessionId, IReadOnlyList<Identifier> signers, IReadOnlyList<uint>? path = null, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(signers);
        ObjectDisposedException.ThrowIf(key.IsDisposed, key);
        random ??= SystemRandomSource.Instance;
        DklsSetup.CheckSid(sessionId);
        Identifier[] set = CheckSigners(key, signers);
        uint[] p = [.. path ?? []];
        (Secp256k1Point childKey, Secp256k1Scalar delta, _) = DklsHd.Derive(key.Public.GroupKey, key.Public.ChainCode, p);
        foreach (Identifier j in set.Where(j => !j.Equals(key.Identifier)))
        {
            _ = key.Pairwise(j);
        }

        var core = new SignCore(key, sessionId.ToArray(), set, p, childKey);
        try
        {
            byte[] bound = Bind(sessionId, key);
            core.Bound = bound;
            Identifier me = key.Identifier;
            var r = Secp256k1Scalar.Random(random);
            var phi = Secp256k1Scalar.Random(random);
            Secp256k1Scalar zeta = ZeroShare.Share(me, set, peer => key.Pairwise(peer).Slice(DklsKeyShare.SeedOffset, 32), bound);
            Secp256k1Scalar sk = (Parties.Lagrange(set, me) * key.Share) + zeta;
            if (me.Equals(set[0]))
            {
                sk += delta;
            }

            core.Set(SignCore.ROffset, r);
            core.Set(SignCore.PhiOffset, phi);
            core.Set(SignCore.SkOffset, sk);
            core.BigR = Secp256k1Point.MultiplyGenerator(r);
            core.Pk = Secp256k1Point.MultiplyGenerator(sk);
            byte[] salt = new byte[32];
            random.Fill(salt);
            core.Salt = salt;
            var messages = new List<DklsMessage>();
            byte[] broadcast = CommitToAll(bound, me, core.BigR, core.Pk, salt);
            core.TheirBroadcasts[me] = broadcast;
            foreach (Identifier j in core.Peers)
            {
                ReadOnlySpan<byte> pw = key.Pairwise(j);
                var bob = new RandomVole.BobState();
                core.Bob[j] = bob;
                byte[] bobMsg = RandomVole.BobStart(
                    pw.Slice(DklsKeyShare.ReceiverSeeds0Offset, EndemicOt.Count * 32), pw.Slice(DklsKeyShare.ReceiverSeeds1Offset, EndemicOt.Count * 32),
                    bound, j, me, random, bob);
                byte[] body = new DklsWriter(Round1BodySize).Raw(Commit(bound, me, j, core.BigR, salt)).Raw(bobMsg).ToArray();
                messages.Add(new DklsMessage(DklsMessageKind.SignRound1, sessionId, me, j, body));
            }

            return (new DklsSignRound1State(core, broadcast), messages);
        }
        catch
        {
            core.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Round two (Protocol 3.6, round 2): as Alice with every peer j, check j's OT extension (a failure bans j: the
    /// pairwise OT state with j is discarded), answer the random VOLE with inputs (r_i, sk_i), and send the opening of
    /// R_i, pk_i = sk_i·G, ψ_ij = φ_i − χ_ij (χ_ij is this party's Bob-side VOLE output with j), Γ^u = c^u·G and Γ^v = c^v·G.
    /// <paramref name="broadcasts"/> holds every peer's round-one broadcast commitment (<see cref="DklsSignRound1State.Broadcast"/>)
    /// as this party received it, one 32-byte value per peer; round three checks each opening against it, and
    /// <see cref="DklsSignRound2State.Echo"/> digests them all for the echo (<see cref="DklsEcho"/>). A missing or
    /// extra peer leaves the state usable (as a missing message does).
    /// </summary>
    public static (DklsSignRound2State State, IReadOnlyList<DklsMessage> Messages) Round2(
        DklsSignRound1State state, IReadOnlyList<DklsMessage> incoming, IReadOnlyDictionary<Identifier, byte[]> broadcasts, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(broadcasts);
        random ??= SystemRandomSource.Instance;
        SignCore peek = state.Peek();
        Dictionary<Identifier, DklsMessage> byPeer = DklsMessage.Route(incoming, DklsMessageKind.SignRound1, peek.SessionId, peek.Me, peek.Signers);
        if (broadcasts.Count != peek.Signers.Length - 1 || peek.Peers.Any(j => !broadcasts.ContainsKey(j)))
        {
            throw DklsErrors.Refused(DklsFailure.InvalidSignerSet, "round two needs exactly one round-one broadcast commitment from every peer");
        }

        SignCore core = state.Take();
        try
        {
            Identifier me = core.Me;
            foreach (Identifier j in core.Peers)
            {
                core.TheirBroadcasts[j] = broadcasts[j].Length == 32 ? [.. broadcasts[j]] : throw DklsErrors.Malformed(j, "broadcast commitment", "not 32 bytes");
            }

            Secp256k1Scalar r = core.Get(SignCore.ROffset), phi = core.Get(SignCore.PhiOffset), sk = core.Get(SignCore.SkOffset);
            var parsed = new Dictionary<Identifier, byte[]>();
            foreach ((Identifier j, DklsMessage m) in byPeer)
            {
                var rd = new DklsReader(m.Body, j, "signRound1");
                core.TheirCommitments[j] = rd.Raw(32, "commitment").ToArray();
                parsed[j] = rd.Raw(RandomVole.BobMessageSize, "rvole").ToArray();
                rd.End();
            }

            var messages = new List<DklsMessage>();
            Span<Secp256k1Scalar> c = stackalloc Secp256k1Scalar[RandomVole.L];
            foreach (Identifier j in core.Peers)
            {
                ReadOnlySpan<byte> pw = core.Key.Pairwise(j);
                byte[] aliceMsg;
                try
                {
                    aliceMsg = RandomVole.AliceRespond(
                        pw.Slice(DklsKeyShare.DeltaOffset, 16), pw.Slice(DklsKeyShare.SenderSeedsOffset, EndemicOt.Count * 32),
                        core.Bound, me, j, parsed[j], [r, sk], random, c);
                }
                catch (DklsProtocolException e) when (e.Failure == DklsFailure.OtExtensionConsistency)
                {
                    core.Key.Ban(j);
                    throw;
                }

                core.AliceShares[j] = [c[0], c[1]];
                Secp256k1Scalar chi = core.Bob[j].B;
                byte[] body = new DklsWriter(Round2FixedSize + RandomVole.AliceMessageSize)
                    .Point(core.BigR).Raw(core.Salt).Point(core.Pk)
                    .Scalar(phi - chi)
                    .Point(Secp256k1Point.MultiplyGenerator(c[0])).Point(Secp256k1Point.MultiplyGenerator(c[1]))
                    .Raw(aliceMsg).ToArray();
                messages.Add(new DklsMessage(DklsMessageKind.SignRound2, core.SessionId, me, j, body));
            }

            c.Clear();
            return (new DklsSignRound2State(core, DklsEcho.Digest(core.SessionId, core.TheirBroadcasts)), messages);
        }
        catch
        {
            core.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Round three (Protocol 3.6, round 3, the message-independent part): for every peer j check the opening of R_j
    /// against j's round-one commitment, finish the Bob-side VOLE (its check value), and the two consistency checks
    /// χ_ij·R_j − Γ^u_j = d^u·G and χ_ij·pk_j − Γ^v_j = d^v·G (pk_j as sent, per the erratum); then Σ pk_j = PK (+ δ·G).
    /// R = Σ R_j ≠ O is checked as soon as every opening is verified, before the VOLE outputs are used. Output: the presignature with u_i = r_i·φ_i + Σ_j (c^u_j + r_i·ψ_ji + d^u_j) and the analogous v_i.
    /// χ·P is computed by libsecp256k1's constant-time ECDH and compared through its hash of the compressed point.
    /// </summary>
    public static DklsPresignature Round3(DklsSignRound2State state, IReadOnlyList<DklsMessage> incoming)
    {
        ArgumentNullException.ThrowIfNull(state);
        SignCore peek = state.Peek();
        Dictionary<Identifier, DklsMessage> byPeer = DklsMessage.Route(incoming, DklsMessageKind.SignRound2, peek.SessionId, peek.Me, peek.Signers);
        using SignCore core = state.Take();
        Identifier me = core.Me;
        Secp256k1Scalar r = core.Get(SignCore.ROffset), phi = core.Get(SignCore.PhiOffset), sk = core.Get(SignCore.SkOffset);
        Secp256k1Scalar u = r * phi, v = sk * phi;
        var points = new List<Secp256k1Point> { core.BigR };
        var pks = new List<Secp256k1Point> { core.Pk };
        var parsed = new Dictionary<Identifier, (Secp256k1Point Rj, Secp256k1Point Pkj, Secp256k1Scalar Psi, Secp256k1Point GammaU, Secp256k1Point GammaV, byte[] Vole)>();
        foreach (Identifier j in core.Peers)
        {
            var rd = new DklsReader(byPeer[j].Body, j, "signRound2");
            Secp256k1Point rj = rd.Point("R");
            ReadOnlySpan<byte> salt = rd.Raw(32, "salt");
            Secp256k1Point pkj = rd.Point("pk");
            Secp256k1Scalar psi = rd.Scalar("psi");
            Secp256k1Point gammaU = rd.Point("gammaU");
            Secp256k1Point gammaV = rd.Point("gammaV");
            byte[] aliceMsg = rd.Raw(RandomVole.AliceMessageSize, "rvole").ToArray();
            rd.End();
            if (!CryptographicOperations.FixedTimeEquals(Commit(core.Bound, j, me, rj, salt), core.TheirCommitments[j]))
            {
                throw DklsErrors.Check(DklsFailure.CommitmentMismatch, j, "the opening of R_j does not match the round-one commitment for this session and pair");
            }

            if (!CryptographicOperations.FixedTimeEquals(CommitToAll(core.Bound, j, rj, pkj, salt), core.TheirBroadcasts[j]))
            {
                throw DklsErrors.Check(DklsFailure.CommitmentMismatch, j, "the opening of R_j and pk_j does not match j's round-one broadcast commitment");
            }

            parsed[j] = (rj, pkj, psi, gammaU, gammaV, aliceMsg);
            points.Add(rj);
            pks.Add(pkj);
        }

        Secp256k1Point bigR = Secp256k1Point.Sum(points.ToArray());
        if (bigR.IsIdentity)
        {
            throw DklsErrors.Check(DklsFailure.NonceIsIdentity, null, "R = Σ R_j is the point at infinity");
        }

        Span<Secp256k1Scalar> d = stackalloc Secp256k1Scalar[RandomVole.L];
        foreach (Identifier j in core.Peers)
        {
            (Secp256k1Point rj, Secp256k1Point pkj, Secp256k1Scalar psi, Secp256k1Point gammaU, Secp256k1Point gammaV, byte[] aliceMsg) = parsed[j];
            Secp256k1Scalar chi = RandomVole.BobFinish(core.Bob[j], aliceMsg, j, d);
            if (!MulEquals(chi, rj, gammaU + Secp256k1Point.MultiplyGenerator(d[0])))
            {
                throw DklsErrors.Check(DklsFailure.GammaUCheck, j, "χ·R_j − Γ^u_j ≠ d^u·G");
            }

            if (!MulEquals(chi, pkj, gammaV + Secp256k1Point.MultiplyGenerator(d[1])))
            {
                throw DklsErrors.Check(DklsFailure.GammaVCheck, j, "χ·pk_j − Γ^v_j ≠ d^v·G");
            }

            Secp256k1Scalar[] c = core.AliceShares[j];
            u += c[0] + (r * psi) + d[0];
            v += c[1] + (sk * psi) + d[1];
        }

        d.Clear();
        if (Secp256k1Point.Sum(pks.ToArray()) != core.ChildKey)
        {
            throw DklsErrors.Check(DklsFailure.PublicKeySum, null, "Σ pk_j ≠ PK: some signer's additive key share is wrong (not attributable from here)");
        }

        var context = new DklsSigningContext(core.SessionId, core.Signers, core.Path, core.ChildKey, bigR, core.Epoch, core.Key.SetupSessionIdBytes);
        return new DklsPresignature(me, context, u, v, phi);
    }

    /// <summary>
    /// The online step (Protocol 3.6, round 3, message part): w_i = H(m)·φ_i + r_x·v_i, sent with u_i to the combiner.
    /// Consumes <paramref name="presignature"/> whatever the outcome; refuses a presignature already used, made before
    /// the key's last refresh (another epoch), or asked to sign under another path than the one fixed in round one.
    /// <paramref name="digest32"/> is the 32-byte message hash (ECDSA's e = the digest as an integer mod n).
    /// </summary>
    public static DklsSignatureShare Sign(DklsPresignature presignature, DklsKeyShare key, ReadOnlySpan<byte> digest32, IReadOnlyList<uint>? path = null)
    {
        ArgumentNullException.ThrowIfNull(presignature);
        ArgumentNullException.ThrowIfNull(key);
        (Secp256k1Scalar u, Secp256k1Scalar v, Secp256k1Scalar phi) = presignature.Consume();
        DklsSigningContext ctx = presignature.Context;
        if (digest32.Length != 32)
        {
            throw DklsErrors.Refused(DklsFailure.MalformedMessage, $"digest: {digest32.Length} bytes, expected 32");
        }

        if (!presignature.Identifier.Equals(key.Identifier) || ctx.Epoch != key.Public.Epoch || !ctx.SetupSessionId.AsSpan().SequenceEqual(key.SetupSessionIdBytes))
        {
            throw DklsErrors.Refused(DklsFailure.PresignatureRefused, "the presignature belongs to another participant, key epoch or pairwise setup (it was made before a refresh or reshare)");
        }

        if (!ctx.PathArray.AsSpan().SequenceEqual((path ?? []).ToArray()))
        {
            throw DklsErrors.Refused(DklsFailure.PresignatureRefused, "the presignature was made for another derivation path; it is never re-targeted");
        }

        Secp256k1Scalar m = Secp256k1Scalar.FromBytesReduced(digest32);
        Secp256k1Scalar rx = Secp256k1Scalar.FromBytesReduced(ctx.R.ToXOnly());
        Secp256k1Scalar w = (m * phi) + (rx * v);
        return new DklsSignatureShare(ctx.SessionIdBytes, presignature.Identifier, u, w);
    }

    /// <summary>H(sid, public key package digest, setup session id): see <see cref="SignCore.Bound"/>.</summary>
    internal static byte[] Bind(ReadOnlySpan<byte> sid, DklsKeyShare key)
    {
        using var h = new DklsHash("sign/session");
        return h.Add(sid).Add(key.Public.Digest()).Add(key.SetupSessionIdBytes).Finish();
    }

    internal static byte[] Commit(ReadOnlySpan<byte> sid, Identifier from, Identifier to, Secp256k1Point r, ReadOnlySpan<byte> salt)
    {
        using var h = new DklsHash("sign/commit-R");
        return h.Add(sid).Add(from).Add(to).Add(r).Add(salt).Finish();
    }

    /// <summary>
    /// The round-one broadcast commitment C_i = H(sid, i, R_i, pk_i, salt_i): the same value to every peer (unlike the
    /// pairwise commitment), so the echo can compare what each peer received. ePrint 2023/765 Protocol 3.6 commits to R_i
    /// in round one and opens it in round two; a party that opens different R_i to different peers makes them compute
    /// different R (security with abort, nobody named). Binding every opening to one broadcast value, whose copies the
    /// signers echo, turns that into a disagreement on signed round-one data, which names its author.
    /// </summary>
    internal static byte[] CommitToAll(ReadOnlySpan<byte> sid, Identifier from, Secp256k1Point r, Secp256k1Point pk, ReadOnlySpan<byte> salt)
    {
        using var h = new DklsHash("sign/commit-R/broadcast");
        return h.Add(sid).Add(from).Add(r).Add(pk).Add(salt).Finish();
    }

    /// <summary>k·P = Q, with k secret: libsecp256k1 ECDH gives SHA-256(compressed k·P), compared with SHA-256(compressed Q).</summary>
    private static bool MulEquals(Secp256k1Scalar k, Secp256k1Point p, Secp256k1Point q)
    {
        if (q.IsIdentity || k.IsZero)
        {
            return false;
        }

        byte[] kb = k.ToBytes();
        try
        {
            using SecretBuffer e = EcdsaSecp256k1.Ecdh(kb, p);
            return CryptographicOperations.FixedTimeEquals(e.ReadOnlySpan, SHA256.HashData(q.ToCompressed()));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(kb);
        }
    }

    private static Identifier[] CheckSigners(DklsKeyShare key, IReadOnlyList<Identifier> signers)
    {
        foreach (Identifier s in signers)
        {
            ArgumentNullException.ThrowIfNull(s);
            _ = Parties.X(s);
        }

        Identifier[] set = [.. signers.Order()];
        if (set.Distinct().Count() != set.Length)
        {
            throw DklsErrors.Refused(DklsFailure.InvalidSignerSet, "the signer set names a participant twice");
        }

        if (set.Length != key.Public.Threshold)
        {
            throw DklsErrors.Refused(DklsFailure.InvalidSignerSet, $"the signer set has {set.Length} members; this key signs with exactly t = {key.Public.Threshold}");
        }

        List<Identifier> strangers = [.. set.Where(s => !key.Public.Contains(s))];
        if (strangers.Count > 0)
        {
            throw DklsErrors.Refused(DklsFailure.InvalidSignerSet, $"the signer set names participants outside the key: {string.Join(", ", strangers)}");
        }

        if (!set.Contains(key.Identifier))
        {
            throw DklsErrors.Refused(DklsFailure.InvalidSignerSet, $"the signer set does not include this participant ({key.Identifier})");
        }

        List<Identifier> banned = [.. set.Where(key.IsBanned)];
        if (banned.Count > 0)
        {
            throw DklsErrors.Refused(DklsFailure.PeerBanned, $"the signer set names banned peers: {string.Join(", ", banned)}; run a fresh pairwise setup");
        }

        return set;
    }
}
