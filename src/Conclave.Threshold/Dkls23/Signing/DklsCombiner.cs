using System.Numerics;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>A signer's final share (u_i, w_i) for one session. Public once sent; the encoding is sid ‖ from ‖ u ‖ w.</summary>
public sealed class DklsSignatureShare
{
    internal DklsSignatureShare(byte[] sid, Identifier from, Secp256k1Scalar u, Secp256k1Scalar w)
    {
        SessionIdBytes = sid;
        From = from;
        U = u;
        W = w;
    }

    internal byte[] SessionIdBytes { get; }

    public Identifier From { get; }

    internal Secp256k1Scalar U { get; }

    internal Secp256k1Scalar W { get; }

    public byte[] ToBytes() => new DklsWriter(1 + SessionIdBytes.Length + 96).Raw([(byte)SessionIdBytes.Length]).Raw(SessionIdBytes).Raw(From.Encoded).Scalar(U).Scalar(W).ToArray();

    /// <summary>Parses a share; a bad sender or session id length is a Drop, a bad scalar a typed refusal naming the sender.</summary>
    public static DklsSignatureShare FromBytes(ReadOnlySpan<byte> encoded)
    {
        if (encoded.Length < 1 || encoded[0] is < 16 or > 64 || encoded.Length != 1 + encoded[0] + 96)
        {
            throw DklsErrors.Drop("not a DKLs23 signature share (length)");
        }

        int n = encoded[0];
        Identifier from = Parties.Read(encoded.Slice(1 + n, 32), "from");
        var r = new DklsReader(encoded[(1 + n + 32)..].ToArray(), from, "signatureShare");
        Secp256k1Scalar u = r.Scalar("u");
        Secp256k1Scalar w = r.Scalar("w");
        r.End();
        return new DklsSignatureShare(encoded.Slice(1, n).ToArray(), from, u, w);
    }

    internal DklsSignatureShare With(Secp256k1Scalar u, Secp256k1Scalar w) => new(SessionIdBytes, From, u, w);
}

/// <summary>A verified ECDSA signature: 64-byte compact r ‖ s with low s (BIP-146), and the recovery id (0..3).</summary>
public sealed record DklsSignature(byte[] Signature, int RecoveryId);

/// <summary>
/// Combines the signers' final shares (DKLs23 Protocol 3.6, output): s = Σ w_i / Σ u_i, r = R.x mod n, normalised to low
/// s, with the recovery id, and verified with libsecp256k1 under the (child) key before it is returned: an unverified
/// signature is never released.
/// </summary>
public static class DklsCombiner
{
    private static readonly BigInteger s_halfOrder = Secp256k1Scalar.Order >> 1;

    /// <summary>
    /// The combiner's view when it is not a signer (the cluster coordinator): it never saw the R_j openings (they travel
    /// sealed between the signers), so it takes R as every signer reported it after round three, and the key the signature
    /// verifies under from the public key package and the CKDpub <paramref name="path"/>. Nothing here is trusted: the
    /// signature is released only if it verifies (and recovers the key) under that child key, exactly as
    /// <see cref="Combine(DklsSigningContext, ReadOnlySpan{byte}, IReadOnlyList{DklsSignatureShare})"/>.
    /// A malformed <paramref name="noncePoint33"/> is a typed refusal (MalformedMessage, nobody named).
    /// </summary>
    public static DklsSignature Combine(DklsPublicKey key, ReadOnlySpan<byte> sessionId, IReadOnlyList<Identifier> signers, IReadOnlyList<uint> path,
        ReadOnlySpan<byte> noncePoint33, ReadOnlySpan<byte> digest32, IReadOnlyList<DklsSignatureShare> shares)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(signers);
        ArgumentNullException.ThrowIfNull(path);
        DklsSetup.CheckSid(sessionId);
        if (noncePoint33.Length != 33 || !Secp256k1Point.TryParse(noncePoint33, out Secp256k1Point r) || r == Secp256k1Point.Identity)
        {
            throw DklsErrors.Malformed(null, "R", "not a 33-byte compressed point on the curve");
        }

        Identifier[] set = [.. signers];
        if (set.Length != key.Threshold || set.Distinct().Count() != set.Length || set.Any(s => !key.Contains(s)))
        {
            throw DklsErrors.Refused(DklsFailure.InvalidSignerSet, $"the signer set must be {key.Threshold} distinct participants of the key");
        }

        (Secp256k1Point child, _, _) = DklsHd.Derive(key.GroupKey, key.ChainCode, path);
        var context = new DklsSigningContext(sessionId.ToArray(), set, [.. path], child, r, key.Epoch, []);
        return Combine(context, digest32, shares);
    }

    public static DklsSignature Combine(DklsSigningContext context, ReadOnlySpan<byte> digest32, IReadOnlyList<DklsSignatureShare> shares)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(shares);
        if (digest32.Length != 32)
        {
            throw DklsErrors.Refused(DklsFailure.MalformedMessage, $"digest: {digest32.Length} bytes, expected 32");
        }

        var byId = new Dictionary<Identifier, DklsSignatureShare>();
        foreach (DklsSignatureShare s in shares)
        {
            ArgumentNullException.ThrowIfNull(s);
            if (!s.SessionIdBytes.AsSpan().SequenceEqual(context.SessionIdBytes))
            {
                throw DklsErrors.Drop($"a signature share from {s.From} for another session");
            }

            if (!context.SignerSet.Contains(s.From))
            {
                throw DklsErrors.Drop($"a signature share from {s.From}, who is not a signer of this session");
            }

            if (!byId.TryAdd(s.From, s))
            {
                throw DklsErrors.Drop($"a second signature share from {s.From}");
            }
        }

        List<Identifier> missing = [.. context.SignerSet.Where(i => !byId.ContainsKey(i))];
        if (missing.Count > 0)
        {
            throw DklsErrors.Refused(DklsFailure.InvalidSignerSet, $"no signature share yet from {string.Join(", ", missing)}");
        }

        Secp256k1Scalar u = Secp256k1Scalar.Zero, w = Secp256k1Scalar.Zero;
        foreach (DklsSignatureShare s in byId.Values)
        {
            u += s.U;
            w += s.W;
        }

        if (u.IsZero)
        {
            throw DklsErrors.Check(DklsFailure.ZeroDenominator, null, "Σ u_i = 0");
        }

        Secp256k1Scalar sig = w * u.Invert();
        byte[] rx = context.R.ToXOnly();
        Secp256k1Scalar r = Secp256k1Scalar.FromBytesReduced(rx);
        int recid = (context.R.HasEvenY ? 0 : 1) | (Secp256k1Scalar.TryFromBytes(rx, out _) ? 0 : 2);
        if (new BigInteger(sig.ToBytes(), isUnsigned: true, isBigEndian: true) > s_halfOrder)
        {
            sig = -sig;
            recid ^= 1;
        }

        byte[] compact = [.. r.ToBytes(), .. sig.ToBytes()];
        byte[] pk = context.ChildKey.ToCompressed();
        if (r.IsZero || sig.IsZero || !EcdsaSecp256k1.Instance.Verify(pk, digest32, compact)
            || !EcdsaSecp256k1.TryRecover(digest32, compact, recid, out Secp256k1Point recovered) || recovered != context.ChildKey)
        {
            throw DklsErrors.Check(DklsFailure.InvalidSignature, null, "the combined signature does not verify: a final share (u_i, w_i) was tampered with");
        }

        return new DklsSignature(compact, recid);
    }
}
