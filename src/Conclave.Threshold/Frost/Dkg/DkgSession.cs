using System.Security.Cryptography;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>What a verifiable-secret-sharing session produces.</summary>
public enum DkgKind
{
    /// <summary>A new key: every participant deals a random polynomial (FROST paper, Figure 1; RFC 9591 Appendix C).</summary>
    KeyGeneration = 1,

    /// <summary>Proactive refresh: polynomials with zero constant term; same key, same t, same participants.</summary>
    Refresh = 2,

    /// <summary>Reshare: t old signers deal their weighted shares λ_i·s_i to a new committee with a new (t', n').</summary>
    Reshare = 3,
}

/// <summary>
/// The public parameters every participant of a DKG, refresh or reshare run agrees on before round one: the kind,
/// a caller-supplied session id (unique per run), the new threshold, who deals and who receives, and for refresh
/// and reshare the current public key package. Everything is hashed into <see cref="Digest"/>, which every proof,
/// echo and confirmation binds (DESIGN.md safety rule 3).
/// </summary>
public sealed class DkgSession
{
    private readonly byte[] _sessionId;
    private readonly byte[] _digest;

    private DkgSession(DkgKind kind, FrostCiphersuite suite, ReadOnlySpan<byte> sessionId, int threshold, IReadOnlyList<Identifier> dealers, IReadOnlyList<Identifier> receivers, PublicKeyPackage? oldKey)
    {
        if (sessionId.Length is < 16 or > 256)
        {
            throw ThresholdErrors.Argument(nameof(sessionId), "a session id is 16..256 bytes, unique per run");
        }

        Kind = kind;
        Suite = suite;
        _sessionId = sessionId.ToArray();
        Threshold = threshold;
        Dealers = [.. dealers.OrderBy(d => d)];
        Receivers = [.. receivers.OrderBy(d => d)];
        OldKey = oldKey;
        Polynomials.EnsureDistinct(Dealers, nameof(dealers));
        Polynomials.EnsureDistinct(Receivers, nameof(receivers));
        if (Dealers.Concat(Receivers).Any(i => !ReferenceEquals(i.Suite, suite)))
        {
            throw ThresholdErrors.WrongSuite("participants", suite);
        }

        if (threshold < 2 || threshold > Receivers.Count)
        {
            throw ThresholdErrors.Argument(nameof(threshold), "must be 2..n");
        }

        var t = new Transcript("Conclave/FROST/session/v1")
            .Append("suite", [suite.WireId])
            .Append("kind", (ulong)kind)
            .Append("session-id", _sessionId)
            .Append("threshold", (ulong)threshold)
            .Append("dealers", Concat(Dealers))
            .Append("receivers", Concat(Receivers))
            .Append("old-key", oldKey?.ToBytes() ?? []);
        _digest = SHA256.HashData(t.ToArray());
    }

    /// <summary>A new t-of-n key among <paramref name="participants"/> (each deals and receives).</summary>
    public static DkgSession ForKeyGeneration(FrostCiphersuite suite, ReadOnlySpan<byte> sessionId, int threshold, IReadOnlyList<Identifier> participants)
    {
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(participants);
        return new DkgSession(DkgKind.KeyGeneration, suite, sessionId, threshold, participants, participants, null);
    }

    /// <summary>A refresh of <paramref name="key"/>: all n participants take part; t and the group key stay.</summary>
    public static DkgSession ForRefresh(ReadOnlySpan<byte> sessionId, PublicKeyPackage key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new DkgSession(DkgKind.Refresh, key.Suite, sessionId, key.Threshold, key.Participants, key.Participants, key);
    }

    /// <summary>
    /// A reshare of <paramref name="oldKey"/> from exactly t old signers (<paramref name="oldSigners"/>) to a new
    /// committee with threshold <paramref name="newThreshold"/>. The group key stays; the old shares become useless.
    /// </summary>
    public static DkgSession ForReshare(ReadOnlySpan<byte> sessionId, PublicKeyPackage oldKey, IReadOnlyList<Identifier> oldSigners, int newThreshold, IReadOnlyList<Identifier> newParticipants)
    {
        ArgumentNullException.ThrowIfNull(oldKey);
        ArgumentNullException.ThrowIfNull(oldSigners);
        ArgumentNullException.ThrowIfNull(newParticipants);
        if (oldSigners.Count != oldKey.Threshold || oldSigners.Any(s => !oldKey.Contains(s)))
        {
            throw ThresholdErrors.Argument(nameof(oldSigners), "exactly t participants of the old key must deal");
        }

        return new DkgSession(DkgKind.Reshare, oldKey.Suite, sessionId, newThreshold, oldSigners, newParticipants, oldKey);
    }

    public DkgKind Kind { get; }

    public FrostCiphersuite Suite { get; }

    public ReadOnlySpan<byte> SessionId => _sessionId;

    /// <summary>The threshold of the resulting key.</summary>
    public int Threshold { get; }

    public IReadOnlyList<Identifier> Dealers { get; }

    public IReadOnlyList<Identifier> Receivers { get; }

    /// <summary>The key being refreshed or reshared (null for key generation).</summary>
    public PublicKeyPackage? OldKey { get; }

    /// <summary>SHA-256 of the length-prefixed encoding of every parameter.</summary>
    public ReadOnlySpan<byte> Digest => _digest;

    /// <summary>How many commitments a dealer publishes: t, or t−1 for refresh (its constant term is zero, not sent).</summary>
    internal int CommitmentCount => Kind == DkgKind.Refresh ? Threshold - 1 : Threshold;

    internal bool HasProofOfKnowledge => Kind != DkgKind.Refresh;

    private static byte[] Concat(IReadOnlyList<Identifier> ids) => [.. ids.SelectMany(i => i.ToBytes())];
}
