using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Threshold.Frost.Internal;

namespace Conclave.Threshold.Frost;

/// <summary>The result of trusted-dealer key generation: the public key package and one key package per participant.</summary>
public sealed class DealerOutput : IDisposable
{
    internal DealerOutput(PublicKeyPackage publicKeyPackage, IReadOnlyList<KeyPackage> keyPackages)
    {
        PublicKeyPackage = publicKeyPackage;
        KeyPackages = keyPackages;
    }

    public PublicKeyPackage PublicKeyPackage { get; }

    /// <summary>The participants' key packages, in identifier order. Hand each to its participant, then dispose the rest.</summary>
    public IReadOnlyList<KeyPackage> KeyPackages { get; }

    public void Dispose()
    {
        foreach (KeyPackage k in KeyPackages)
        {
            k.Dispose();
        }
    }
}

/// <summary>
/// Trusted-dealer key generation (RFC 9591 Appendix C): Shamir secret sharing of a group secret with a random
/// polynomial of degree t−1 (C.1) and the Feldman VSS commitment that yields the verifying shares (C.2).
/// For tests and for importing an existing key; production keys come from <see cref="Dkg"/>.
/// </summary>
public static class TrustedDealer
{
    /// <summary>trusted_dealer_keygen with a fresh random secret, for participants 1..n.</summary>
    public static DealerOutput Generate(FrostCiphersuite suite, int threshold, int participants, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(suite);
        random ??= HealthCheckedRandomSource.System;
        Scalar secret = suite.RandomScalar(random);
        return SplitCore(suite, secret, threshold, Ids(suite, participants), random, null, default);
    }

    /// <summary>
    /// Splits an existing secret key (SerializeScalar form, non-zero) into t-of-n shares for the given identifiers.
    /// <paramref name="chainCode"/>: the key's own 32-byte chain code (for example from its BIP-32 extended key);
    /// empty = a fresh random one.
    /// </summary>
    public static DealerOutput Split(FrostCiphersuite suite, ReadOnlySpan<byte> secretKey, int threshold, IReadOnlyList<Identifier> participants, IRandomSource? random = null, ReadOnlySpan<byte> chainCode = default)
    {
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(participants);
        if (!suite.TryReadScalar(secretKey, out Scalar? secret) || secret.IsZero)
        {
            throw ThresholdErrors.InvalidScalar(nameof(secretKey));
        }

        return SplitCore(suite, secret, threshold, participants, random ?? HealthCheckedRandomSource.System, null, chainCode);
    }

    /// <summary>Identifiers 1..n.</summary>
    public static IReadOnlyList<Identifier> Ids(FrostCiphersuite suite, int participants)
    {
        if (participants is < 2 or > ushort.MaxValue)
        {
            throw ThresholdErrors.Argument(nameof(participants), "must be 2..65535");
        }

        return [.. Enumerable.Range(1, participants).Select(i => Identifier.FromInt(suite, i))];
    }

    /// <summary>
    /// Recovers the group secret from at least t key packages by interpolation at zero (RFC 9591 Appendix C.1
    /// secret_share_combine). Only for key export and tests: FROST never needs the whole key.
    /// </summary>
    public static SecretBuffer Reconstruct(IReadOnlyList<KeyPackage> keyPackages)
    {
        ArgumentNullException.ThrowIfNull(keyPackages);
        if (keyPackages.Count == 0 || keyPackages.Count < keyPackages[0].Threshold)
        {
            throw ThresholdErrors.Argument(nameof(keyPackages), "at least t key packages are needed");
        }

        FrostCiphersuite suite = keyPackages[0].Suite;
        Identifier[] ids = [.. keyPackages.Select(k => k.Identifier)];
        Scalar acc = suite.ScalarZero;
        foreach (KeyPackage k in keyPackages)
        {
            acc += k.Share * Polynomials.Lagrange(suite, ids, k.Identifier);
        }

        SecretBuffer result = SecretBuffer.Allocate(suite.ScalarSizeInBytes);
        acc.WriteTo(result.Span);
        return result;
    }

    internal static DealerOutput SplitCore(FrostCiphersuite suite, Scalar secret, int threshold, IReadOnlyList<Identifier> ids, IRandomSource? random, IReadOnlyList<Scalar>? fixedCoefficients, ReadOnlySpan<byte> chainCode)
    {
        Polynomials.EnsureDistinct(ids, nameof(ids));
        if (threshold < 2 || threshold > ids.Count)
        {
            throw ThresholdErrors.Argument(nameof(threshold), "must be 2..n");
        }

        Scalar[] coeffs;
        if (fixedCoefficients is not null)
        {
            coeffs = [secret, .. fixedCoefficients];
        }
        else
        {
            coeffs = Polynomials.RandomPolynomial(suite, secret, threshold, random!);
        }

        // vss_commit (RFC 9591 Appendix C.2): C_k = a_k·G; PK = C_0; PK_i = Σ C_k·i^k = s_i·G.
        Element groupKey = suite.BaseMul(secret);
        var shares = new List<(Identifier Id, Scalar Share)>(ids.Count);
        var verifying = new List<KeyValuePair<Identifier, Element>>(ids.Count);
        foreach (Identifier id in ids)
        {
            if (!ReferenceEquals(id.Suite, suite))
            {
                throw ThresholdErrors.WrongSuite(nameof(ids), suite);
            }

            Scalar s = Polynomials.Evaluate(coeffs, id.Value);
            shares.Add((id, s));
            verifying.Add(new(id, suite.BaseMul(s)));
        }

        // A random chain code unless the imported key brings its own: a chain code computed from the group key would
        // let anyone who learns the key derive every non-hardened child (docs/FROST.md "HD").
        byte[] cc = chainCode.ToArray();
        if (chainCode.IsEmpty)
        {
            cc = new byte[32];
            (random ?? HealthCheckedRandomSource.System).Fill(cc);
        }

        var pkp = new PublicKeyPackage(suite, threshold, groupKey, verifying, cc);
        return new DealerOutput(pkp, [.. shares.Select(s => new KeyPackage(s.Id, s.Share, pkp))]);
    }
}
