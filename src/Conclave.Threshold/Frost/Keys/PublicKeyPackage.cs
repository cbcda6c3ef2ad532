using System.Security.Cryptography;
using System.Text;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>
/// The public side of a threshold key: the group public key, every participant's verifying share
/// (RFC 9591 section 5: PK_i = s_i·G), the threshold t, and a 32-byte chain code for non-hardened HD derivation
/// (BIP-32 style; see <see cref="HdDerivation"/>). Public data; serializable; validated on construction and parse.
/// </summary>
public sealed class PublicKeyPackage
{
    private readonly SortedDictionary<Identifier, Element> _shares;
    private readonly byte[] _chainCode;

    internal PublicKeyPackage(FrostCiphersuite suite, int threshold, Element groupKey, IEnumerable<KeyValuePair<Identifier, Element>> verifyingShares, ReadOnlySpan<byte> chainCode, bool checkInterpolation = true)
    {
        Suite = suite;
        Threshold = threshold;
        GroupKey = groupKey;
        _shares = new SortedDictionary<Identifier, Element>();
        foreach (KeyValuePair<Identifier, Element> kv in verifyingShares)
        {
            if (!ReferenceEquals(kv.Key.Suite, suite))
            {
                throw ThresholdErrors.WrongSuite("verifyingShares", suite);
            }

            if (!_shares.TryAdd(kv.Key, kv.Value))
            {
                throw ThresholdErrors.Format("verifyingShares", $"participant {kv.Key} appears twice");
            }

            if (kv.Value.IsIdentity)
            {
                throw ThresholdErrors.IdentityElement($"verifyingShares[{kv.Key}]");
            }
        }

        if (threshold < 2 || threshold > _shares.Count)
        {
            throw ThresholdErrors.Format("threshold", "threshold must be at least 2 and at most the number of participants");
        }

        if (groupKey.IsIdentity)
        {
            throw ThresholdErrors.IdentityElement("groupPublicKey");
        }

        if (chainCode.Length != 32)
        {
            throw ThresholdErrors.Format("chainCode", "must be 32 bytes");
        }

        _chainCode = chainCode.ToArray();
        if (checkInterpolation)
        {
            // All verifying shares must lie on one polynomial of degree t−1 whose value at 0 is the group key:
            // the first t interpolate to PK (RFC 9591 section 5: PK = Σ λ_i·PK_i) and to every other PK_j.
            Identifier[] first = [.. _shares.Keys.Take(threshold)];
            foreach ((Identifier target, Element expected) in _shares.Skip(threshold).Select(kv => (kv.Key, kv.Value)).Prepend((null!, groupKey)))
            {
                Scalar x = target is null ? suite.ScalarZero : target.Value;
                var terms = first.Select(id => _shares[id] * Polynomials.LagrangeAt(suite, first, id, x)).ToList();
                if (!suite.Sum(terms).ValueEquals(expected))
                {
                    throw ThresholdErrors.Format("verifyingShares", "verifying shares do not lie on one polynomial of degree t-1 through the group public key");
                }
            }
        }
    }

    public FrostCiphersuite Suite { get; }

    /// <summary>t: the number of signers needed (MIN_PARTICIPANTS).</summary>
    public int Threshold { get; }

    /// <summary>n: the number of participants (MAX_PARTICIPANTS).</summary>
    public int ParticipantCount => _shares.Count;

    internal Element GroupKey { get; }

    /// <summary>SerializeElement(group public key): 32 bytes (ed25519) or 33 compressed (secp256k1, taproot).</summary>
    public byte[] GroupPublicKey => GroupKey.ToBytes();

    /// <summary>The key signatures verify under: as <see cref="GroupPublicKey"/>, except x-only (32 bytes) for taproot.</summary>
    public byte[] VerificationKey => Suite.EncodePublicKey(GroupKey);

    /// <summary>
    /// The chain code kept with the key for non-hardened derivation (<see cref="HdDerivation"/>). For a DKG key it is a
    /// hash of every dealer's secret contribution (<see cref="Dkg"/>), for a dealer key random or the imported key's
    /// own; refresh and reshare carry it over. Whoever holds it and the group key can derive every non-hardened child.
    /// </summary>
    public ReadOnlySpan<byte> ChainCode => _chainCode;

    public IReadOnlyList<Identifier> Participants => [.. _shares.Keys];

    internal IReadOnlyDictionary<Identifier, Element> Shares => _shares;

    public bool Contains(Identifier id) => _shares.ContainsKey(id);

    /// <summary>SerializeElement(PK_i) for a participant.</summary>
    public byte[] GetVerifyingShare(Identifier id)
        => _shares.TryGetValue(id, out Element? e) ? e.ToBytes() : throw ThresholdErrors.Argument(nameof(id), $"participant {id} is not in the key");

    internal Element VerifyingShare(Identifier id)
        => _shares.TryGetValue(id, out Element? e) ? e : throw ThresholdErrors.Protocol(ThresholdFailure.UnexpectedParticipant, [id], $"participant {id} is not in the key");

    /// <summary>
    /// The chain code keys made before DKG chain-code contributions got: SHA-256("Conclave/FROST/chain-code/v1" ‖
    /// suite ‖ group key), a public function of the group key. Kept only to recognise such keys
    /// (<see cref="HasLegacyChainCode"/>); new keys never get it.
    /// </summary>
    internal static byte[] LegacyChainCode(FrostCiphersuite suite, Element groupKey)
        => SHA256.HashData([.. Encoding.ASCII.GetBytes("Conclave/FROST/chain-code/v1"), suite.WireId, .. groupKey.ToBytes()]);

    /// <summary>
    /// True when the chain code is the legacy one computed from the group key: anyone who knows the group key can
    /// then derive every non-hardened child. Keys created by an older DKG or dealer keep it (their children's
    /// addresses are in use, and refresh and reshare keep the chain code); a key that needs private children must be
    /// created anew.
    /// </summary>
    public bool HasLegacyChainCode => CryptographicOperations.FixedTimeEquals(_chainCode, LegacyChainCode(Suite, GroupKey));

    /// <summary>
    /// The package of the key (±Y) + t·G: every verifying share gets the same public tweak, which is what adding
    /// the constant t to the sharing polynomial does (used by HD derivation and the BIP-341 taproot tweak).
    /// </summary>
    internal PublicKeyPackage WithTweak(bool negate, Scalar tweak, ReadOnlySpan<byte> chainCode)
    {
        Element tg = Suite.BaseMul(tweak);
        Element Apply(Element y) => Suite.Sum([negate ? -y : y, tg]);
        Element key = Apply(GroupKey);
        if (key.IsIdentity)
        {
            throw ThresholdErrors.Format("tweak", "the tweaked key is the identity");
        }

        return new PublicKeyPackage(Suite, Threshold, key, _shares.Select(kv => new KeyValuePair<Identifier, Element>(kv.Key, Apply(kv.Value))), chainCode, checkInterpolation: false);
    }

    public byte[] ToBytes()
    {
        var w = new WireWriter(WireKind.PublicKeyPackage, Suite);
        w.U16(Threshold);
        w.U16(_shares.Count);
        w.Element(GroupKey);
        w.Raw(_chainCode);
        foreach (KeyValuePair<Identifier, Element> kv in _shares)
        {
            w.Id(kv.Key);
            w.Element(kv.Value);
        }

        return w.ToArray();
    }

    public static PublicKeyPackage FromBytes(FrostCiphersuite suite, ReadOnlySpan<byte> encoded)
    {
        ArgumentNullException.ThrowIfNull(suite);
        var r = new WireReader(encoded, WireKind.PublicKeyPackage, suite, "publicKeyPackage");
        PublicKeyPackage p = Read(ref r);
        r.End();
        return p;
    }

    internal static PublicKeyPackage Read(ref WireReader r)
    {
        int t = r.U16();
        int n = r.U16();
        Element pk = r.Element("groupPublicKey");
        ReadOnlySpan<byte> cc = r.Raw(32);
        var shares = new List<KeyValuePair<Identifier, Element>>(n);
        for (int i = 0; i < n; i++)
        {
            Identifier id = r.Id("identifier");
            shares.Add(new(id, r.Element("verifyingShare")));
        }

        return new PublicKeyPackage(r.Suite, t, pk, shares, cc);
    }

    /// <summary>Equal when every public field is equal (same key, same shares, same threshold, same chain code).</summary>
    public bool PublicEquals(PublicKeyPackage other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return ToBytes().AsSpan().SequenceEqual(other.ToBytes());
    }
}
