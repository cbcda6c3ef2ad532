using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;

namespace Conclave.Threshold.Frost;

/// <summary>A non-hardened derivation path and, for frost-taproot, the BIP-341 tweak to apply after it.</summary>
/// <param name="Path">Non-hardened child indices (each below 2^31), applied in order; empty for the key itself.</param>
/// <param name="TaprootMerkleRoot">frost-taproot only: null = no tweak (BIP-340 under the internal key);
/// empty = key-path-only output (BIP-341 recommendation); 32 bytes = script tree root.</param>
public sealed record KeyDerivation(IReadOnlyList<uint> Path, byte[]? TaprootMerkleRoot = null)
{
    public static KeyDerivation None { get; } = new([]);

    /// <summary>
    /// The key Conclave publishes and signs under for <paramref name="path"/>: the HD child itself for frost-ed25519
    /// and frost-secp256k1; for frost-taproot the BIP-86 output key of the child — the child of the internal
    /// (DKG or dealer) key first, then BIP-341 <c>taproot_tweak_pubkey</c> with an empty merkle root,
    /// Q = P + int(hash_TapTweak(x(P)))·G (BIP-86 "Address derivation"; BIP-341 "Constructing and spending Taproot
    /// outputs"). A frost-taproot key never signs under its untweaked group key: a dealer that saw the others'
    /// commitments first could have biased it to hide a script path (P = P' + hash_TapTweak(P' ‖ m)·G).
    /// </summary>
    public static KeyDerivation Signing(FrostCiphersuite suite, IReadOnlyList<uint> path)
    {
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(path);
        return suite.RequiresEvenY ? new KeyDerivation(path, []) : new KeyDerivation(path);
    }

    /// <summary>True when <see cref="FrostScheme.Derive(KeyPackage, KeyDerivation)"/> would return the key unchanged.</summary>
    public bool IsIdentity => Path.Count == 0 && TaprootMerkleRoot is null;
}

/// <summary>One participant's outgoing DKG message, to be encrypted to <see cref="Recipient"/> by the node layer.</summary>
public sealed record DkgOutgoing(int Recipient, SecretBuffer Package);

/// <summary>
/// The facade the node and coordinator layers call: one instance per scheme name (<c>frost-ed25519</c>,
/// <c>frost-secp256k1</c>, <c>frost-taproot</c>), messages as bytes, participants as integers 1..65535, secrets as
/// <see cref="SecretBuffer"/>s or the sealed <see cref="KeyPackage"/> / <see cref="SigningNonces"/> objects.
/// Load a key package once (<see cref="LoadKeyPackage"/>: parsing validates the whole public key package) and keep
/// the object; every per-signature message is parsed and validated on each call.
/// </summary>
public sealed class FrostScheme
{
    private FrostScheme(FrostCiphersuite suite) => Suite = suite;

    public static FrostScheme Ed25519 { get; } = new(FrostCiphersuite.Ed25519Sha512);

    public static FrostScheme Secp256k1 { get; } = new(FrostCiphersuite.Secp256k1Sha256);

    public static FrostScheme Taproot { get; } = new(FrostCiphersuite.Secp256k1Taproot);

    public static IReadOnlyList<FrostScheme> All { get; } = [Ed25519, Secp256k1, Taproot];

    public static bool TryGet(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out FrostScheme? scheme)
    {
        scheme = All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.Ordinal));
        return scheme is not null;
    }

    public static FrostScheme Get(string name)
        => TryGet(name, out FrostScheme? s) ? s : throw ThresholdErrors.Argument(nameof(name), "unknown FROST scheme");

    public FrostCiphersuite Suite { get; }

    public string Name => Suite.SchemeName;

    public int SignatureSizeInBytes => Suite.SignatureSizeInBytes;

    /// <summary>Size of <see cref="PublicKeyPackage.VerificationKey"/>: 32 (ed25519, taproot x-only) or 33.</summary>
    public int PublicKeySizeInBytes => Suite.PublicKeySizeInBytes;

    private Identifier Id(int participant) => Identifier.FromInt(Suite, participant);

    // ---- keys ----

    /// <summary>Trusted-dealer key generation (tests, imports): the public key package and one secret key package per participant 1..n.</summary>
    public (byte[] PublicKeyPackage, IReadOnlyList<SecretBuffer> KeyPackages) GenerateWithDealer(int threshold, int participants, IRandomSource? random = null)
    {
        using DealerOutput d = TrustedDealer.Generate(Suite, threshold, participants, random);
        return (d.PublicKeyPackage.ToBytes(), [.. d.KeyPackages.Select(k => k.Export())]);
    }

    public KeyPackage LoadKeyPackage(ReadOnlySpan<byte> encoded) => KeyPackage.Import(Suite, encoded);

    public PublicKeyPackage LoadPublicKeyPackage(ReadOnlySpan<byte> encoded) => PublicKeyPackage.FromBytes(Suite, encoded);

    /// <summary>
    /// The key package for a derivation (HD path, then the taproot tweak): a new package the caller disposes; the
    /// input is not consumed. <see cref="KeyDerivation.Signing"/> gives the derivation Conclave signs with.
    /// </summary>
    public KeyPackage Derive(KeyPackage key, KeyDerivation derivation)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(derivation);
        if (derivation.Path.Count == 0)
        {
            return derivation.TaprootMerkleRoot is null ? KeyPackage.Import(Suite, Exported(key)) : TaprootTweak.Apply(key, derivation.TaprootMerkleRoot);
        }

        KeyPackage k = HdDerivation.DerivePath(key, derivation.Path);
        if (derivation.TaprootMerkleRoot is null)
        {
            return k;
        }

        using (k)
        {
            return TaprootTweak.Apply(k, derivation.TaprootMerkleRoot);
        }
    }

    public PublicKeyPackage Derive(PublicKeyPackage key, KeyDerivation derivation)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(derivation);
        PublicKeyPackage k = HdDerivation.DerivePath(key, derivation.Path);
        return derivation.TaprootMerkleRoot is null ? k : TaprootTweak.Apply(k, derivation.TaprootMerkleRoot);
    }

    private static byte[] Exported(KeyPackage key)
    {
        using SecretBuffer b = key.Export();
        return b.ReadOnlySpan.ToArray();
    }

    // ---- signing ----

    /// <summary>Round one: <paramref name="count"/> nonce pairs for a pool; send the commitments, keep the nonces sealed.</summary>
    public IReadOnlyList<SigningNonces> Commit(KeyPackage key, int count = 1, IRandomSource? random = null)
        => FrostSigner.CommitBatch(key, count, random);

    /// <summary>The coordinator's signing package from the message and the chosen signers' commitments.</summary>
    public byte[] CreateSigningPackage(ReadOnlySpan<byte> message, IEnumerable<byte[]> commitments)
    {
        ArgumentNullException.ThrowIfNull(commitments);
        return new SigningPackage(message, commitments.Select(c => SigningCommitments.FromBytes(Suite, c))).ToBytes();
    }

    /// <summary>Round two with in-memory nonces (consumed). <paramref name="key"/> must already be derived (see <see cref="Derive(KeyPackage, KeyDerivation)"/>).</summary>
    public byte[] Sign(KeyPackage key, SigningNonces nonces, ReadOnlySpan<byte> signingPackage)
        => FrostSigner.Sign(SigningPackage.FromBytes(Suite, signingPackage), nonces, key).ToBytes();

    /// <summary>Round two with nonces from a sealed pool entry (<see cref="SigningNonces.Export"/>); the caller deletes the entry durably first.</summary>
    public byte[] Sign(KeyPackage key, ReadOnlySpan<byte> exportedNonces, ReadOnlySpan<byte> signingPackage)
    {
        using SigningNonces nonces = SigningNonces.Import(Suite, exportedNonces);
        return Sign(key, nonces, signingPackage);
    }

    /// <summary>Verifies every share (culprits in <see cref="ThresholdProtocolException"/>), aggregates, verifies the signature.</summary>
    public byte[] Aggregate(PublicKeyPackage key, ReadOnlySpan<byte> signingPackage, IEnumerable<byte[]> shares)
    {
        ArgumentNullException.ThrowIfNull(shares);
        return FrostAggregator.Aggregate(SigningPackage.FromBytes(Suite, signingPackage), [.. shares.Select(s => SignatureShare.FromBytes(Suite, s))], key);
    }

    /// <summary>Verifies a final signature under a verification key (<see cref="PublicKeyPackage.VerificationKey"/>). Never throws.</summary>
    public bool Verify(ReadOnlySpan<byte> verificationKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        try
        {
            return Suite.Verify(verificationKey, message, signature);
        }
        catch (Exception e) when (e is ArgumentException or Conclave.Crypto.CryptoFormatException)
        {
            return false;
        }
    }

    // ---- DKG, refresh, reshare ----

    public DkgSession KeyGenerationSession(ReadOnlySpan<byte> sessionId, int threshold, IReadOnlyList<int> participants)
    {
        ArgumentNullException.ThrowIfNull(participants);
        return DkgSession.ForKeyGeneration(Suite, sessionId, threshold, [.. participants.Select(Id)]);
    }

    public DkgSession RefreshSession(ReadOnlySpan<byte> sessionId, PublicKeyPackage key) => DkgSession.ForRefresh(sessionId, key);

    public DkgSession ReshareSession(ReadOnlySpan<byte> sessionId, PublicKeyPackage oldKey, IReadOnlyList<int> oldSigners, int newThreshold, IReadOnlyList<int> newParticipants)
    {
        ArgumentNullException.ThrowIfNull(oldSigners);
        ArgumentNullException.ThrowIfNull(newParticipants);
        return DkgSession.ForReshare(sessionId, oldKey, [.. oldSigners.Select(Id)], newThreshold, [.. newParticipants.Select(Id)]);
    }

    /// <summary>
    /// The commit step (<see cref="Dkg.Commit"/>): the secret state to keep and the commitment to broadcast (null for
    /// a receive-only reshare member, which still collects everyone's commitments).
    /// </summary>
    public (DkgCommitSecret Secret, byte[]? Commitment) DkgCommit(DkgSession session, int self, KeyPackage? currentKey = null, IRandomSource? random = null)
    {
        DkgCommitSecret s = Dkg.Commit(session, Id(self), currentKey, random);
        return (s, s.Commitment?.ToBytes());
    }

    /// <summary>Round one after the commit step: every other dealer's commitment in; the state and the broadcast (null for a receive-only member) out.</summary>
    public (DkgRound1Secret Secret, byte[]? Broadcast) DkgRound1(DkgCommitSecret secret, IEnumerable<byte[]> commitments)
    {
        ArgumentNullException.ThrowIfNull(commitments);
        DkgRound1Secret s = Dkg.Round1(secret, [.. commitments.Select(c => DkgCommitment.FromBytes(Suite, c))]);
        return (s, s.Package?.ToBytes());
    }

    /// <summary>Round two: validates the other dealers' broadcasts; returns the state and the shares to encrypt and send.</summary>
    public (DkgRound2Secret Secret, IReadOnlyList<DkgOutgoing> Outgoing) DkgRound2(DkgRound1Secret secret, IEnumerable<byte[]> broadcasts, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(broadcasts);
        (DkgRound2Secret s, IReadOnlyList<DkgRound2Package> outgoing) = Dkg.Round2(secret, [.. broadcasts.Select(b => DkgRound1Package.FromBytes(Suite, b))], random);
        var result = new List<DkgOutgoing>(outgoing.Count);
        foreach (DkgRound2Package p in outgoing)
        {
            using (p)
            {
                result.Add(new DkgOutgoing(ToInt(p.Recipient), p.Export()));
            }
        }

        return (s, result);
    }

    /// <summary>End of round two: the pending key and this participant's confirmation to broadcast.</summary>
    public (DkgPendingKey Pending, byte[] Confirmation) DkgFinish(DkgRound2Secret secret, IEnumerable<SecretBuffer> received, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(received);
        DkgPendingKey pending = Dkg.Finish(secret, [.. received.Select(r => DkgRound2Package.Import(Suite, r.ReadOnlySpan))], random);
        return (pending, pending.Confirmation.ToBytes());
    }

    /// <summary>After every receiver's confirmation: the usable key package.</summary>
    public KeyPackage DkgComplete(DkgPendingKey pending, IEnumerable<byte[]> confirmations)
    {
        ArgumentNullException.ThrowIfNull(pending);
        ArgumentNullException.ThrowIfNull(confirmations);
        return pending.Complete([.. confirmations.Select(c => DkgConfirmation.FromBytes(Suite, c))]);
    }

    private static int ToInt(Identifier id)
        => int.TryParse(id.ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v) ? v : throw ThresholdErrors.Argument(nameof(id), "not a small identifier");
}
