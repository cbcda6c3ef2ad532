using Conclave.Crypto.Memory;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Ot;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>
/// One party's secret DKLs23 key material: its Shamir share p(i) (guarded memory) and, for every peer j, the pairwise
/// state of the pairwise setup: the zero-sharing seed s_ij, the OT-extension sender state of the direction where this
/// party is Alice (Δ and the κ base-OT seeds s^{Δ_k}_k) and the receiver state of the direction where it is Bob
/// (both seeds of each of the κ base OTs). Sealed, disposable; Dispose zeroes everything.
/// A peer that fails the OT-extension check is banned: its pairwise state is zeroed and signing with it refused until a
/// fresh pairwise setup.
/// </summary>
public sealed class DklsKeyShare : IDisposable
{
    internal const int SeedOffset = 0;
    internal const int DeltaOffset = 32;
    internal const int SenderSeedsOffset = DeltaOffset + 16;
    internal const int ReceiverSeeds0Offset = SenderSeedsOffset + (EndemicOt.Count * 32);
    internal const int ReceiverSeeds1Offset = ReceiverSeeds0Offset + (EndemicOt.Count * 32);
    internal const int PairwiseSize = ReceiverSeeds1Offset + (EndemicOt.Count * 32);

    private readonly SecretBuffer _share;
    private readonly Dictionary<Identifier, SecretBuffer> _pairwise;
    private readonly HashSet<Identifier> _banned = [];
    private readonly object _gate = new();

    internal DklsKeyShare(Identifier id, Secp256k1Scalar share, DklsPublicKey publicKey, Dictionary<Identifier, SecretBuffer> pairwise, byte[] setupSessionId)
    {
        if (share.IsZero || Secp256k1Point.MultiplyGenerator(share) != publicKey.VerifyingShare(id))
        {
            throw DklsErrors.Malformed(null, "share", $"the share of participant {id} does not match its verifying share");
        }

        Identifier = id;
        Public = publicKey;
        _share = SecretBuffer.Allocate(32, SecretMemoryKind.Guarded);
        // Pairwise buffers are pinned (not guarded): a concurrent Ban zeroes one under a reader instead of unmapping it.
        share.WriteTo(_share.Span);
        _pairwise = pairwise;
        SetupSessionIdBytes = setupSessionId;
    }

    /// <summary>The session id of the pairwise setup that made this share: presignatures are bound to it.</summary>
    public byte[] SetupSessionId => (byte[])SetupSessionIdBytes.Clone();

    internal byte[] SetupSessionIdBytes { get; }

    /// <summary>
    /// This party's Shamir share as a frost-secp256k1 key package, for the protocol-neutral lifecycle runs that reuse the
    /// FROST DKG engine (reshare to another (t′, n′), repair). The caller owns (and must dispose) the result.
    /// </summary>
    public KeyPackage ToFrostKeyPackage()
    {
        return new KeyPackage(Identifier, new Frost.Ciphersuites.K1Scalar(Share), Public.ToFrostPublicKeyPackage());
    }

    public Identifier Identifier { get; }

    public DklsPublicKey Public { get; }

    public bool IsDisposed => _share.IsDisposed;

    /// <summary>Peers banned after a failed OT-extension check (until a fresh pairwise setup).</summary>
    public IReadOnlyCollection<Identifier> BannedPeers
    {
        get
        {
            lock (_gate)
            {
                return [.. _banned];
            }
        }
    }

    internal Secp256k1Scalar Share
    {
        get
        {
            ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
            return Secp256k1Scalar.FromBytes(_share.ReadOnlySpan);
        }
    }

    internal bool IsBanned(Identifier peer)
    {
        lock (_gate)
        {
            return _banned.Contains(peer);
        }
    }

    /// <summary>The pairwise secret state with <paramref name="peer"/> (layout: the offsets above).</summary>
    internal ReadOnlySpan<byte> Pairwise(Identifier peer)
    {
        ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
        lock (_gate)
        {
            if (_banned.Contains(peer) || !_pairwise.TryGetValue(peer, out SecretBuffer? b))
            {
                throw DklsErrors.Refused(DklsFailure.PeerBanned, $"no pairwise OT state with participant {peer}: it was banned; run a fresh pairwise setup");
            }

            return b.ReadOnlySpan;
        }
    }

    /// <summary>Discards the pairwise OT state with <paramref name="peer"/> for good and records it as banned.</summary>
    internal void Ban(Identifier peer)
    {
        lock (_gate)
        {
            _banned.Add(peer);
            if (_pairwise.Remove(peer, out SecretBuffer? b))
            {
                b.Dispose();
            }
        }
    }

    /// <summary>
    /// The versioned secret encoding, to be sealed before storage: 0x01 ‖ len ‖ public key ‖ identifier ‖ share ‖
    /// len(setup sid) ‖ setup sid ‖ banned count ‖ banned ids ‖ peer count ‖ per peer (identifier ‖ pairwise state).
    /// Written straight into a zeroed-on-dispose buffer.
    /// </summary>
    public SecretBuffer Export()
    {
        ObjectDisposedException.ThrowIf(_share.IsDisposed, this);
        byte[] pub = Public.ToBytes();
        lock (_gate)
        {
            int size = 1 + 4 + pub.Length + 32 + 32 + 1 + SetupSessionIdBytes.Length + 4 + (32 * _banned.Count) + 4 + (_pairwise.Count * (32 + PairwiseSize));
            var output = SecretBuffer.Allocate(size);
            Span<byte> o = output.Span;
            int pos = 0;
            Put(o, ref pos, [1]);
            PutU32(o, ref pos, pub.Length);
            Put(o, ref pos, pub);
            Put(o, ref pos, Identifier.Encoded);
            Put(o, ref pos, _share.ReadOnlySpan);
            Put(o, ref pos, [(byte)SetupSessionIdBytes.Length]);
            Put(o, ref pos, SetupSessionIdBytes);
            PutU32(o, ref pos, _banned.Count);
            foreach (Identifier b in _banned.Order())
            {
                Put(o, ref pos, b.Encoded);
            }

            PutU32(o, ref pos, _pairwise.Count);
            foreach ((Identifier peer, SecretBuffer b) in _pairwise.OrderBy(kv => kv.Key))
            {
                Put(o, ref pos, peer.Encoded);
                Put(o, ref pos, b.ReadOnlySpan);
            }

            return output;
        }
    }

    private static void Put(Span<byte> o, ref int pos, ReadOnlySpan<byte> b)
    {
        b.CopyTo(o[pos..]);
        pos += b.Length;
    }

    private static void PutU32(Span<byte> o, ref int pos, int v)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(o.Slice(pos, 4), v);
        pos += 4;
    }

    /// <summary>Parses <see cref="Export"/> strictly; checks the share against its verifying share and that every non-banned peer has exactly one pairwise state.</summary>
    public static DklsKeyShare Import(ReadOnlySpan<byte> encoded)
    {
        byte[] copy = encoded.ToArray();
        try
        {
            return ImportCore(new Internal.DklsReader(copy, null, "keyShare"));
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(copy);
        }
    }

    private static DklsKeyShare ImportCore(Internal.DklsReader r)
    {
        if (r.Raw(1, "version")[0] != 1)
        {
            throw DklsErrors.Malformed(null, "keyShare.version", "unknown version");
        }

        DklsPublicKey pub = DklsPublicKey.FromBytes(r.Blob("publicKey", 1 << 20));
        Identifier me = ReadMember(pub, r.Raw(32, "identifier"), "identifier");
        ReadOnlySpan<byte> shareBytes = r.Raw(32, "share");
        if (!Secp256k1Scalar.TryFromBytes(shareBytes, out Secp256k1Scalar share))
        {
            throw DklsErrors.Malformed(null, "keyShare.share", "scalar is not below the group order n");
        }

        int sidLength = r.Raw(1, "setupSessionId")[0];
        byte[] sid = r.Raw(sidLength, "setupSessionId").ToArray();
        var banned = new HashSet<Identifier>();
        uint bannedCount = r.U32("bannedCount");
        for (uint k = 0; k < bannedCount && k <= (uint)pub.ParticipantCount; k++)
        {
            banned.Add(ReadMember(pub, r.Raw(32, "banned"), "banned"));
        }

        var pairwise = new Dictionary<Identifier, SecretBuffer>();
        try
        {
            uint count = r.U32("peerCount");
            for (uint k = 0; k < count && k <= (uint)pub.ParticipantCount; k++)
            {
                Identifier peer = ReadMember(pub, r.Raw(32, "peer"), "peer");
                if (peer.Equals(me) || banned.Contains(peer) || pairwise.ContainsKey(peer))
                {
                    throw DklsErrors.Malformed(null, "keyShare.peer", $"participant {peer} is this party, banned or listed twice");
                }

                pairwise[peer] = SecretBuffer.CopyFrom(r.Raw(PairwiseSize, "pairwise"));
            }

            r.End();
            if (pairwise.Count + banned.Count != pub.ParticipantCount - 1 || banned.Contains(me))
            {
                throw DklsErrors.Malformed(null, "keyShare", "every other participant needs a pairwise state or a ban");
            }

            var key = new DklsKeyShare(me, share, pub, pairwise, sid);
            foreach (Identifier b in banned)
            {
                key._banned.Add(b);
            }

            return key;
        }
        catch
        {
            foreach (SecretBuffer b in pairwise.Values)
            {
                b.Dispose();
            }

            throw;
        }
    }

    private static Identifier ReadMember(DklsPublicKey pub, ReadOnlySpan<byte> encoded, string field)
    {
        Identifier id;
        try
        {
            id = Internal.Parties.Read(encoded, field);
        }
        catch (DklsProtocolException)
        {
            throw DklsErrors.Malformed(null, "keyShare." + field, "not a valid identifier");
        }

        return pub.Contains(id) ? id : throw DklsErrors.Malformed(null, "keyShare." + field, $"participant {id} is not part of the key");
    }

    public void Dispose()
    {
        _share.Dispose();
        lock (_gate)
        {
            foreach (SecretBuffer b in _pairwise.Values)
            {
                b.Dispose();
            }

            _pairwise.Clear();
        }
    }

    public override string ToString() => $"DklsKeyShare(participant {Identifier}, {Public.Threshold}-of-{Public.ParticipantCount}, epoch {Public.Epoch})";
}
