using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Dkls23.Ot;
using Conclave.Threshold.Dkls23.ZeroSharing;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>
/// The pairwise setup that turns a frost-secp256k1 key share into a DKLs23 key share (DKLs23, ePrint 2023/765,
/// section 3 "Setup": F_RVOLE initialisation for both directions of every pair, and the F_Zero seeds). Two rounds:
/// <list type="number">
/// <item><see cref="Start"/>: to every peer j, the base-OT receiver message of the direction (Alice = i, Bob = j)
/// with choice bits Δ_ij, the base-OT sender point S of the direction (Alice = j, Bob = i), a commitment to this party's
/// zero-seed contribution, and the digest of its public key package.</item>
/// <item><see cref="Round2"/>: checks j's digest (all parties must hold the same public key package), derives both
/// directions' base-OT seeds (<see cref="EndemicOt"/>) and opens the zero-seed contribution.</item>
/// <item><see cref="Finish"/>: checks every opening against its commitment and forms the pairwise seeds.</item>
/// </list>
/// The setup session id must be fresh for every setup (key generation, refresh, reshare).
/// </summary>
public static class DklsSetup
{
    private const int Round1BodySize = EndemicOt.ReceiverMessageSize + 33 + 32 + 32;

    /// <summary>
    /// Setup round one for the owner of a frost-secp256k1 key package (from the FROST DKG, or a FROST reshare of a DKLs23
    /// key, in which case <paramref name="epoch"/> is the old epoch + 1 so older presignatures stay refused).
    /// </summary>
    public static (DklsSetupState State, IReadOnlyList<DklsMessage> Messages) Start(
        KeyPackage frostKey, ReadOnlySpan<byte> dkgSessionId, ReadOnlySpan<byte> setupSessionId, IRandomSource? random = null, uint epoch = 0)
    {
        ArgumentNullException.ThrowIfNull(frostKey);
        DklsPublicKey pub = DklsPublicKey.FromFrost(frostKey.PublicKeyPackage, dkgSessionId, epoch);
        byte[] share = frostKey.Share.ToBytes();
        try
        {
            return Start(frostKey.Identifier, Secp256k1Scalar.FromBytes(share), pub, setupSessionId, random ?? SystemRandomSource.Instance);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(share);
        }
    }

    internal static (DklsSetupState State, IReadOnlyList<DklsMessage> Messages) Start(
        Identifier me, Secp256k1Scalar share, DklsPublicKey pub, ReadOnlySpan<byte> setupSid, IRandomSource random)
    {
        CheckSid(setupSid);
        _ = Parties.X(me);
        if (!pub.Contains(me))
        {
            throw DklsErrors.Refused(DklsFailure.InvalidParticipant, $"participant {me} is not part of this key");
        }

        var state = new DklsSetupState(me, share, pub, setupSid);
        try
        {
            return (state, StartCore(state, me, pub, setupSid, random));
        }
        catch
        {
            state.Dispose();
            throw;
        }
    }

    private static List<DklsMessage> StartCore(DklsSetupState state, Identifier me, DklsPublicKey pub, ReadOnlySpan<byte> setupSid, IRandomSource random)
    {
        byte[] digest = pub.Digest();
        var messages = new List<DklsMessage>();
        foreach (Identifier j in pub.Participants.Where(p => !p.Equals(me)))
        {
            var peer = new DklsSetupState.Peer();
            state.Peers[j] = peer;
            random.Fill(peer.Secrets.Span.Slice(DklsSetupState.DeltaOffset, 16));
            random.Fill(peer.Secrets.Span.Slice(DklsSetupState.ContributionOffset, 32));
            peer.SenderKey = Secp256k1Scalar.Random(random);
            byte[] baseOt = EndemicOt.ReceiverMessage(
                BaseOtContext(setupSid, me, j), peer.Secrets.ReadOnlySpan.Slice(DklsSetupState.DeltaOffset, 16), random,
                peer.Secrets.Span.Slice(DklsSetupState.ReceiverKeysOffset, EndemicOt.Count * 32));
            byte[] body = new DklsWriter(Round1BodySize)
                .Raw(baseOt)
                .Point(Secp256k1Point.MultiplyGenerator(peer.SenderKey))
                .Raw(ZeroShare.Commit(setupSid, me, j, peer.Secrets.ReadOnlySpan.Slice(DklsSetupState.ContributionOffset, 32)))
                .Raw(digest)
                .ToArray();
            messages.Add(new DklsMessage(DklsMessageKind.SetupRound1, setupSid, me, j, body));
        }

        return messages;
    }

    /// <summary>Setup round two: base-OT seeds of both directions with every peer, and the zero-seed openings.</summary>
    public static IReadOnlyList<DklsMessage> Round2(DklsSetupState state, IReadOnlyList<DklsMessage> incoming)
    {
        ArgumentNullException.ThrowIfNull(state);
        Dictionary<Identifier, DklsMessage> byPeer = DklsMessage.Route(incoming, DklsMessageKind.SetupRound1, state.SessionId, state.Me, state.Public.Participants);
        state.Advance(1);
        try
        {
            return Round2Core(state, byPeer);
        }
        catch
        {
            state.Dispose();
            throw;
        }
    }

    private static List<DklsMessage> Round2Core(DklsSetupState state, Dictionary<Identifier, DklsMessage> byPeer)
    {
        byte[] digest = state.Public.Digest();
        var outgoing = new List<DklsMessage>();
        foreach ((Identifier j, DklsMessage m) in byPeer.OrderBy(kv => kv.Key))
        {
            var r = new DklsReader(m.Body, j, "setupRound1");
            byte[] baseOt = r.Raw(EndemicOt.ReceiverMessageSize, "baseOtReceiverMessage").ToArray();
            Secp256k1Point s = r.Point("baseOtSenderPoint");
            byte[] commitment = r.Raw(32, "zeroSeedCommitment").ToArray();
            ReadOnlySpan<byte> theirDigest = r.Raw(32, "publicKeyDigest");
            r.End();
            if (!CryptographicOperations.FixedTimeEquals(theirDigest, digest))
            {
                throw DklsErrors.Check(DklsFailure.PublicKeyMismatch, j, "the peer holds another public key package (shares, group key, chain code or epoch)");
            }

            DklsSetupState.Peer peer = state.Peers[j];
            peer.TheirCommitment = commitment;
            Span<byte> secrets = peer.Secrets.Span;

            // Direction (Alice = j, Bob = me): I am the base-OT sender and get both seeds of every base OT.
            EndemicOt.SenderSeeds(BaseOtContext(state.SessionId, j, state.Me), peer.SenderKey, baseOt, j,
                secrets.Slice(DklsSetupState.Seeds0Offset, EndemicOt.Count * 32), secrets.Slice(DklsSetupState.Seeds1Offset, EndemicOt.Count * 32));

            // Direction (Alice = me, Bob = j): I am the base-OT receiver with choice bits Δ.
            EndemicOt.ReceiverSeeds(BaseOtContext(state.SessionId, state.Me, j), secrets.Slice(DklsSetupState.DeltaOffset, 16),
                secrets.Slice(DklsSetupState.ReceiverKeysOffset, EndemicOt.Count * 32), s, secrets.Slice(DklsSetupState.ChosenSeedsOffset, EndemicOt.Count * 32));
            secrets.Slice(DklsSetupState.ReceiverKeysOffset, EndemicOt.Count * 32).Clear();
            peer.SenderKey = default;
            outgoing.Add(new DklsMessage(DklsMessageKind.SetupRound2, state.SessionId, state.Me, j,
                secrets.Slice(DklsSetupState.ContributionOffset, 32).ToArray()));
        }

        return outgoing;
    }

    /// <summary>Setup finish: checks the zero-seed openings and returns the DKLs23 key share. Consumes the state.</summary>
    public static DklsKeyShare Finish(DklsSetupState state, IReadOnlyList<DklsMessage> incoming)
    {
        ArgumentNullException.ThrowIfNull(state);
        Dictionary<Identifier, DklsMessage> byPeer = DklsMessage.Route(incoming, DklsMessageKind.SetupRound2, state.SessionId, state.Me, state.Public.Participants);
        state.Advance(2);
        var pairwise = new Dictionary<Identifier, SecretBuffer>();
        try
        {
            foreach ((Identifier j, DklsMessage m) in byPeer.OrderBy(kv => kv.Key))
            {
                if (m.Body.Length != ZeroShare.ContributionSize)
                {
                    throw DklsErrors.Malformed(j, "setupRound2.zeroSeedOpening", $"length {m.Body.Length}, expected {ZeroShare.ContributionSize}");
                }

                DklsSetupState.Peer peer = state.Peers[j];
                if (!CryptographicOperations.FixedTimeEquals(ZeroShare.Commit(state.SessionId, j, state.Me, m.Body), peer.TheirCommitment))
                {
                    throw DklsErrors.Check(DklsFailure.SeedCommitmentMismatch, j, "the zero-share seed opening does not match its commitment");
                }

                ReadOnlySpan<byte> s = peer.Secrets.ReadOnlySpan;
                var b = SecretBuffer.Allocate(DklsKeyShare.PairwiseSize, SecretMemoryKind.Pinned);
                pairwise[j] = b;
                ZeroShare.Seed(state.SessionId, state.Me, s.Slice(DklsSetupState.ContributionOffset, 32), j, m.Body, b.Span.Slice(DklsKeyShare.SeedOffset, 32));
                s.Slice(DklsSetupState.DeltaOffset, 16).CopyTo(b.Span.Slice(DklsKeyShare.DeltaOffset, 16));
                s.Slice(DklsSetupState.ChosenSeedsOffset, EndemicOt.Count * 32).CopyTo(b.Span.Slice(DklsKeyShare.SenderSeedsOffset));
                s.Slice(DklsSetupState.Seeds0Offset, EndemicOt.Count * 32).CopyTo(b.Span.Slice(DklsKeyShare.ReceiverSeeds0Offset));
                s.Slice(DklsSetupState.Seeds1Offset, EndemicOt.Count * 32).CopyTo(b.Span.Slice(DklsKeyShare.ReceiverSeeds1Offset));
            }

            return new DklsKeyShare(state.Me, state.Share, state.Public, pairwise, state.SessionId);
        }
        catch
        {
            foreach (SecretBuffer b in pairwise.Values)
            {
                b.Dispose();
            }

            throw;
        }
        finally
        {
            state.Dispose();
        }
    }

    internal static byte[] BaseOtContext(ReadOnlySpan<byte> setupSid, Identifier alice, Identifier bob)
    {
        using var h = new DklsHash("base-ot/ctx");
        return h.Add(setupSid).Add(alice).Add(bob).Finish();
    }

    internal static void CheckSid(ReadOnlySpan<byte> sid)
    {
        if (sid.Length is < 16 or > 64)
        {
            throw DklsErrors.Refused(DklsFailure.WrongSession, "session ids are 16 to 64 bytes");
        }
    }
}

/// <summary>One party's secret state between the pairwise-setup steps. Consumed by <see cref="DklsSetup.Finish"/>.</summary>
public sealed class DklsSetupState : IDisposable
{
    internal const int DeltaOffset = 0;
    internal const int ContributionOffset = 16;
    internal const int ReceiverKeysOffset = ContributionOffset + 32;
    internal const int ChosenSeedsOffset = ReceiverKeysOffset + (EndemicOt.Count * 32);
    internal const int Seeds0Offset = ChosenSeedsOffset + (EndemicOt.Count * 32);
    internal const int Seeds1Offset = Seeds0Offset + (EndemicOt.Count * 32);
    internal const int Size = Seeds1Offset + (EndemicOt.Count * 32);

    private readonly SecretBuffer _share;
    private int _step;

    internal DklsSetupState(Identifier me, Secp256k1Scalar share, DklsPublicKey pub, ReadOnlySpan<byte> sid)
    {
        Me = me;
        Public = pub;
        SessionId = sid.ToArray();
        _share = SecretBuffer.Allocate(32);
        share.WriteTo(_share.Span);
    }

    internal sealed class Peer
    {
        internal readonly SecretBuffer Secrets = SecretBuffer.Allocate(Size);
        internal Secp256k1Scalar SenderKey;
        internal byte[] TheirCommitment = [];
    }

    internal Identifier Me { get; }

    internal DklsPublicKey Public { get; }

    internal byte[] SessionId { get; }

    internal Dictionary<Identifier, Peer> Peers { get; } = [];

    internal Secp256k1Scalar Share => Secp256k1Scalar.FromBytes(_share.ReadOnlySpan);

    internal void Advance(int expectedStep)
    {
        ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
        if (_step + 1 != expectedStep)
        {
            throw ThresholdErrors.Consumed("this pairwise-setup step");
        }

        _step = expectedStep;
    }

    public void Dispose()
    {
        _share.Dispose();
        foreach (Peer p in Peers.Values)
        {
            p.Secrets.Dispose();
            p.SenderKey = default;
        }
    }
}
