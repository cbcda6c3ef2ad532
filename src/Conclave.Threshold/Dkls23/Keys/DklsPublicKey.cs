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

    public override string ToString() => $"DklsPublicKey({Threshold}-of-{ParticipantCount}, epoch {Epoch})";
}
