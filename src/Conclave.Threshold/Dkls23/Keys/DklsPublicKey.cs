using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>
/// The public side of a DKLs23 key (scheme <c>ecdsa-dkls23</c>): threshold t, every participant's verifying share
/// pk_j = p(j)·G of the Shamir sharing, the group key PK, the BIP-32 chain code, the DKG session id that bound the key
/// into being, and the key epoch (0 after key generation, +1 per refresh). Public data, immutable.
/// </summary>
public sealed class DklsPublicKey
{
    private readonly SortedDictionary<Identifier, Secp256k1Point> _shares;
    private readonly byte[] _chainCode;
    private readonly byte[] _dkgSessionId;

    internal DklsPublicKey(int threshold, SortedDictionary<Identifier, Secp256k1Point> shares, Secp256k1Point groupKey, ReadOnlySpan<byte> chainCode, ReadOnlySpan<byte> dkgSessionId, uint epoch)
    {
        if (threshold < 2 || threshold > shares.Count)
        {
            throw DklsErrors.Refused(DklsFailure.InvalidSignerSet, "threshold must be at least 2 and at most the number of participants");
        }

        if (groupKey.IsIdentity || shares.Values.Any(p => p.IsIdentity))
        {
            throw DklsErrors.Malformed(null, "publicKey", "the group key or a verifying share is the point at infinity");
        }

        if (chainCode.Length != 32)
        {
            throw DklsErrors.Malformed(null, "publicKey.chainCode", "must be 32 bytes");
        }

        if (dkgSessionId.Length is < 16 or > 64)
        {
            throw DklsErrors.Malformed(null, "publicKey.dkgSessionId", "must be 16 to 64 bytes");
        }

        Threshold = threshold;
        _shares = shares;
        GroupKey = groupKey;
        _chainCode = chainCode.ToArray();
        _dkgSessionId = dkgSessionId.ToArray();
        Epoch = epoch;
    }

    /// <summary>
    /// The DKLs23 public key of a frost-secp256k1 key: the Shamir shares, group key and chain code from the FROST DKG
    /// (whose verifying shares were already checked to lie on one polynomial of degree t−1), plus the DKG session id.
    /// </summary>
    public static DklsPublicKey FromFrost(PublicKeyPackage frostKey, ReadOnlySpan<byte> dkgSessionId, uint epoch = 0)
    {
        ArgumentNullException.ThrowIfNull(frostKey);
        if (frostKey.Suite.SchemeName != "frost-secp256k1")
        {
            throw DklsErrors.Refused(DklsFailure.InvalidParticipant, $"DKLs23 keys are built from frost-secp256k1 keys, not {frostKey.Suite.SchemeName}");
        }

        var shares = new SortedDictionary<Identifier, Secp256k1Point>();
        foreach (Identifier id in frostKey.Participants)
        {
            shares[id] = Secp256k1Point.Parse(frostKey.GetVerifyingShare(id), "verifyingShare");
        }

        return new DklsPublicKey(frostKey.Threshold, shares, Secp256k1Point.Parse(frostKey.GroupPublicKey, "groupKey"), frostKey.ChainCode, dkgSessionId, epoch);
    }

    /// <summary>
    /// This key as a frost-secp256k1 public key package (threshold, verifying shares, group key, chain code), the old key
    /// of a refresh or reshare run through the FROST DKG engine; what <see cref="DklsKeyShare.ToFrostKeyPackage"/> carries.
    /// </summary>
    public PublicKeyPackage ToFrostPublicKeyPackage()
    {
        FrostCiphersuite suite = FrostCiphersuite.All.First(s => s.SchemeName == "frost-secp256k1");
        return new PublicKeyPackage(suite, Threshold, new Frost.Ciphersuites.K1Element(GroupKey),
            Shares.Select(kv => new KeyValuePair<Identifier, Frost.Ciphersuites.Element>(kv.Key, new Frost.Ciphersuites.K1Element(kv.Value))),
            ChainCode);
    }

    public int Threshold { get; }

    public int ParticipantCount => _shares.Count;

    public IReadOnlyList<Identifier> Participants => [.. _shares.Keys];

    /// <summary>The group public key, 33 bytes SEC1 compressed (the Ethereum address is Keccak of its uncompressed form).</summary>
    public byte[] GroupPublicKey => GroupKey.ToCompressed();

    public ReadOnlySpan<byte> ChainCode => _chainCode;

    public byte[] DkgSessionId => (byte[])_dkgSessionId.Clone();

    public uint Epoch { get; }

    internal Secp256k1Point GroupKey { get; }

    internal IReadOnlyDictionary<Identifier, Secp256k1Point> Shares => _shares;

    public bool Contains(Identifier id) => _shares.ContainsKey(id);

    public byte[] GetVerifyingShare(Identifier id) => VerifyingShare(id).ToCompressed();

    internal Secp256k1Point VerifyingShare(Identifier id)
        => _shares.TryGetValue(id, out Secp256k1Point p) ? p : throw DklsErrors.Refused(DklsFailure.InvalidParticipant, $"participant {id} is not part of this key");

    /// <summary>The same key with new verifying shares and the next epoch (refresh).</summary>
    internal DklsPublicKey NextEpoch(SortedDictionary<Identifier, Secp256k1Point> shares)
        => new(Threshold, shares, GroupKey, _chainCode, _dkgSessionId, checked(Epoch + 1));

    /// <summary>A digest of every public field: parties compare it in the pairwise setup so all hold the same key.</summary>
    internal byte[] Digest()
    {
        using var h = new DklsHash("public-key");
        h.Add(Threshold).Add(GroupKey).Add(_chainCode).Add(_dkgSessionId).Add((int)Epoch);
        foreach ((Identifier id, Secp256k1Point p) in _shares)
        {
            h.Add(id).Add(p);
        }

        return h.Finish();
    }

    /// <summary>
    /// The versioned encoding: 0x01 ‖ t (u32) ‖ n (u32) ‖ n × (identifier 32 ‖ pk_j 33) ‖ PK 33 ‖ chain code 32 ‖
    /// len(DKG sid) (u32) ‖ DKG sid ‖ epoch (u32). Public data.
    /// </summary>
    public byte[] ToBytes()
    {
        var w = new DklsWriter(9 + (65 * _shares.Count) + 65 + 4 + _dkgSessionId.Length + 4).Raw([1]).U32((uint)Threshold).U32((uint)_shares.Count);
        foreach ((Identifier id, Secp256k1Point p) in _shares)
        {
            w.Raw(id.Encoded).Point(p);
        }

        return w.Point(GroupKey).Raw(_chainCode).Blob(_dkgSessionId).U32(Epoch).ToArray();
    }

    /// <summary>
    /// Parses <see cref="ToBytes"/> strictly (typed refusals): canonical non-zero identifiers in increasing order, points on
    /// the curve, and verifying shares that lie on one polynomial of degree t−1 through the group key.
    /// </summary>
    public static DklsPublicKey FromBytes(ReadOnlySpan<byte> encoded)
    {
        var r = new DklsReader(encoded.ToArray(), null, "publicKey");
        if (r.Raw(1, "version")[0] != 1)
        {
            throw DklsErrors.Malformed(null, "publicKey.version", "unknown version");
        }

        uint t = r.U32("threshold"), n = r.U32("participants");
        if (n is < 2 or > 1000 || t < 2 || t > n)
        {
            throw DklsErrors.Malformed(null, "publicKey", "threshold and participant count out of range");
        }

        var shares = new SortedDictionary<Identifier, Secp256k1Point>();
        Identifier? previous = null;
        for (int k = 0; k < n; k++)
        {
            ReadOnlySpan<byte> idBytes = r.Raw(32, $"participants[{k}]");
            Identifier id;
            try
            {
                id = Parties.Read(idBytes, $"participants[{k}]");
            }
            catch (DklsProtocolException)
            {
                throw DklsErrors.Malformed(null, $"publicKey.participants[{k}]", "not a valid identifier (zero, not below n)");
            }

            if (previous is not null && previous.CompareTo(id) >= 0)
            {
                throw DklsErrors.Malformed(null, "publicKey.participants", "identifiers must be distinct and in increasing order");
            }

            previous = id;
            shares[id] = r.Point($"verifyingShares[{k}]");
        }

        Secp256k1Point groupKey = r.Point("groupKey");
        byte[] chainCode = r.Raw(32, "chainCode").ToArray();
        byte[] sid = r.Blob("dkgSessionId", 64).ToArray();
        uint epoch = r.U32("epoch");
        r.End();
        var key = new DklsPublicKey((int)t, shares, groupKey, chainCode, sid, epoch);
        key.CheckInterpolation();
        return key;
    }

    /// <summary>The first t verifying shares interpolate to the group key and to every other verifying share.</summary>
    private void CheckInterpolation()
    {
        Identifier[] first = [.. _shares.Keys.Take(Threshold)];
        foreach ((Secp256k1Scalar x, Secp256k1Point expected) in _shares.Skip(Threshold).Select(kv => (Parties.X(kv.Key), kv.Value)).Prepend((Secp256k1Scalar.Zero, GroupKey)))
        {
            var terms = first.Select(i => _shares[i].MultiplyPublic(Parties.LagrangeAt(first, i, x))).ToArray();
            if (Secp256k1Point.Sum(terms) != expected)
            {
                throw DklsErrors.Malformed(null, "publicKey.verifyingShares", "the verifying shares do not lie on one polynomial of degree t-1 through the group key");
            }
        }
    }

    public override string ToString() => $"DklsPublicKey({Threshold}-of-{ParticipantCount}, epoch {Epoch})";
}
