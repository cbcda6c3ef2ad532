using System.Security.Cryptography;
using Conclave.Chains.Ethereum.Safe;
using Conclave.Crypto.Signing;
using Conclave.Hsm;
using Conclave.Hsm.Schemes;
using Conclave.PostQuantum;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Cli.Bench;

/// <summary>
/// The in-process rows of `conclave bench`: what each scheme's arithmetic costs on this machine with no network,
/// no store and no audit. The first row is the baseline every ratio divides by.
/// </summary>
internal static class BenchRows
{
    public const string BaselineId = "ecdsa-secp256k1/libsecp256k1";

    public const string SingleHostProfile = "the one host (or process) holding the key";

    private static readonly byte[] s_message = "conclave bench: liquidate position 42 at mark 61,250.00"u8.ToArray();

    private static readonly byte[] s_digest = SHA256.HashData(s_message);

    /// <summary>Every in-process row id, in the order they run, for --schemes and the help text.</summary>
    public static IReadOnlyList<string> Ids { get; } =
    [
        BaselineId, "ecdsa-secp256k1/dotnet", "schnorr-bip340", "ed25519",
        "hsm-ecdsa-secp256k1", "hsm-ed25519",
        "frost-secp256k1", "frost-taproot", "frost-ed25519",
        "safe-multisig",
        "ml-dsa-65", "slh-dsa-sha2-128s", "slh-dsa-shake-128f",
        "policy",
    ];

    public static bool Wanted(IReadOnlyList<string>? filter, string id)
        => id == BaselineId || filter is null || filter.Any(f => id.Equals(f, StringComparison.Ordinal) || id.StartsWith(f + "/", StringComparison.Ordinal));

    public static void RunAll(BenchContext ctx)
    {
        Single(ctx, BaselineId, SignatureSchemes.EcdsaSecp256k1, "libsecp256k1 (Bitcoin Core's library), constant time");
        DotnetEcdsa(ctx);
        Single(ctx, "schnorr-bip340", SignatureSchemes.SchnorrBip340, null);
        Single(ctx, "ed25519", SignatureSchemes.Ed25519, "libsodium");
        Hsm(ctx);
        foreach (string shape in ctx.Settings.Shapes)
        {
            foreach (FrostScheme scheme in FrostScheme.All.OrderBy(s => s.Name == "frost-ed25519" ? 1 : 0))
            {
                Frost(ctx, scheme, shape);
            }
        }

        foreach (string shape in ctx.Settings.Shapes)
        {
            Safe(ctx, shape);
        }

        // Post-quantum rows have no concurrent figure: SLH-DSA signs in tens of milliseconds, so the budget would
        // hold only a handful of calls per thread.
        Single(ctx, "ml-dsa-65", PostQuantumSchemes.MlDsa65, "BouncyCastle", PostQuantumFamily);
        Single(ctx, "slh-dsa-sha2-128s", PostQuantumSchemes.SlhDsaSha2_128s, "BouncyCastle", PostQuantumFamily);
        Single(ctx, "slh-dsa-shake-128f", PostQuantumSchemes.SlhDsaShake_128f, "BouncyCastle", PostQuantumFamily);
        PolicyBench.Run(ctx);
    }

    private const string SingleKeyFamily = "single-key";
    private const string PostQuantumFamily = "post-quantum";

    /// <summary>One in-process software key: key generation, sign and verify latency and, for the single-key family,
    /// signatures per second with one thread per core.</summary>
    private static void Single(BenchContext ctx, string id, SoftwareSignatureScheme scheme, string? note, string family = SingleKeyFamily)
    {
        if (!ctx.Begin(id))
        {
            return;
        }

        scheme.GenerateKey().Dispose(); // the first call pays JIT and native loading; time the second
        SoftwareSigningKey? key = null;
        double keygen = Sampler.Once(() => key = scheme.GenerateKey());
        using (key)
        {
            byte[] input = scheme.InputKind == SignInputKind.Digest32 ? s_digest : s_message;
            byte[] sig = key!.Sign(input).Signature;
            Latency sign = ctx.Sampler.Sequential(() => key.Sign(input));
            Latency verify = ctx.Sampler.Sequential(() => scheme.Verify(key.PublicKey.Span, input, sig));
            bool measureConcurrent = family == SingleKeyFamily;
            double concurrent = measureConcurrent ? ctx.Sampler.Concurrent(() => key.Sign(input), Environment.ProcessorCount) : 0;
            ctx.Add(new BenchRow
            {
                Id = id, Family = family, Scheme = scheme.Name, Shape = "1-of-1", Where = "in-process",
                KeyGenerationMs = keygen, Sign = sign, VerifyUs = verify.P50Us, ConcurrentPerSecond = concurrent,
                Concurrency = measureConcurrent ? Environment.ProcessorCount : 0, SignatureBytes = sig.Length, SecurityProfile = SingleHostProfile, Note = note,
            });
        }
    }

    private static void DotnetEcdsa(BenchContext ctx)
    {
        const string id = "ecdsa-secp256k1/dotnet";
        if (!ctx.Begin(id))
        {
            return;
        }

        ECDsa? key = null;
        double keygen = Sampler.Once(() => key = ECDsa.Create(ECCurve.CreateFromFriendlyName("secP256k1")));
        using (key)
        {
            byte[] sig = key!.SignHash(s_digest);
            Latency sign = ctx.Sampler.Sequential(() => key.SignHash(s_digest));
            Latency verify = ctx.Sampler.Sequential(() => key.VerifyHash(s_digest, sig));
            double concurrent = ctx.Sampler.Concurrent(() => key.SignHash(s_digest), Environment.ProcessorCount);
            ctx.Add(new BenchRow
            {
                Id = id, Family = "single-key", Scheme = "ecdsa-secp256k1", Shape = "1-of-1", Where = "in-process",
                KeyGenerationMs = keygen, Sign = sign, VerifyUs = verify.P50Us, ConcurrentPerSecond = concurrent,
                Concurrency = Environment.ProcessorCount, SignatureBytes = sig.Length, SecurityProfile = SingleHostProfile,
                Note = ".NET's ECDsa (OpenSSL), the comparison for choosing libsecp256k1",
            });
        }
    }

    private static void Hsm(BenchContext ctx)
    {
        bool wantEcdsa = Wanted(ctx.Settings.Schemes, "hsm-ecdsa-secp256k1");
        bool wantEd = Wanted(ctx.Settings.Schemes, "hsm-ed25519");
        if (!wantEcdsa && !wantEd)
        {
            return;
        }

        if (ctx.Settings.Hsm is null)
        {
            foreach (string id in new[] { "hsm-ecdsa-secp256k1", "hsm-ed25519" }.Where(i => Wanted(ctx.Settings.Schemes, i)))
            {
                ctx.Skip(id, "no HSM given (--hsm-module, --hsm-token and --hsm-pin-file, or CONCLAVE_HSM_MODULE/_TOKEN/_PIN_FILE)");
            }

            return;
        }

        using HsmToken token = HsmToken.Open(ctx.Settings.Hsm);
        string suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        foreach ((string id, HsmSignatureScheme scheme, bool wanted) in new[]
        {
            ("hsm-ecdsa-secp256k1", (HsmSignatureScheme)HsmSignatureSchemes.EcdsaSecp256k1, wantEcdsa),
            ("hsm-ed25519", (HsmSignatureScheme)HsmSignatureSchemes.Ed25519, wantEd),
        })
        {
            if (!wanted || !ctx.Begin(id))
            {
                continue;
            }

            string keyId = $"bench-{id}-{suffix}";
            HsmSigningKey? key = null;
            double keygen = Sampler.Once(() => key = token.GenerateKey(scheme, keyId));
            try
            {
                byte[] input = scheme.InputKind == SignInputKind.Digest32 ? s_digest : s_message;
                byte[] sig = key!.Sign(input).Signature;
                Latency sign = ctx.Sampler.Sequential(() => key.Sign(input));
                Latency verify = ctx.Sampler.Sequential(() => scheme.Verify(key.PublicKey.Span, input, sig));
                int threads = Math.Min(ctx.Settings.Hsm.SessionPoolSize, 8);
                double concurrent = ctx.Sampler.Concurrent(() => key.Sign(input), threads);
                ctx.Add(new BenchRow
                {
                    Id = id, Family = "hsm", Scheme = scheme.Name, Shape = "1-of-1", Where = "in-process",
                    KeyGenerationMs = keygen, Sign = sign, VerifyUs = verify.P50Us, ConcurrentPerSecond = concurrent, Concurrency = threads,
                    SignatureBytes = sig.Length,
                    SecurityProfile = "the token (its PIN and a session on a host that reaches it); the key never leaves the token",
                    Note = $"PKCS#11 module {Path.GetFileName(ctx.Settings.Hsm.ModulePath)}",
                });
            }
            finally
            {
                token.DeleteKey(keyId);
            }
        }
    }

    /// <summary>
    /// A whole FROST signature's arithmetic for exactly t signers in one process: each signer's round-1 commitment and
    /// round-2 share (RFC 9591 sections 5.1 and 5.2), then aggregation with every share verified (section 5.3).
    /// What the cluster adds on top is transport, envelopes, the store and the audit: see the cluster rows.
    /// </summary>
    private static void Frost(BenchContext ctx, FrostScheme scheme, string shape)
    {
        string id = $"{scheme.Name}/{shape}";
        if (!Wanted(ctx.Settings.Schemes, scheme.Name) || !ctx.Begin(id))
        {
            return;
        }

        (int t, int n) = Shapes.Parse(shape);
        TrustedDealer.Generate(scheme.Suite, t, n).Dispose(); // warm: time the second key generation
        DealerOutput? dealt = null;
        double keygen = Sampler.Once(() => dealt = TrustedDealer.Generate(scheme.Suite, t, n));
        using (dealt)
        {
            KeyPackage[] signers = [.. dealt!.KeyPackages.Take(t)];
            byte[] lastSignature = [];
            void SignOnce()
            {
                var nonces = signers.Select(k => FrostSigner.Commit(k)).ToList();
                var package = new SigningPackage(s_message, nonces.Select(x => x.Commitments));
                var shares = signers.Select((k, i) => FrostSigner.Sign(package, nonces[i], k)).ToList();
                lastSignature = FrostAggregator.Aggregate(package, shares, dealt.PublicKeyPackage);
                foreach (SigningNonces x in nonces)
                {
                    x.Dispose();
                }
            }

            Latency sign = ctx.Sampler.Sequential(SignOnce);
            byte[] sig = lastSignature;
            byte[] vk = dealt.PublicKeyPackage.VerificationKey;
            Latency verify = ctx.Sampler.Sequential(() => scheme.Suite.Verify(vk, s_message, sig));
            ctx.Add(new BenchRow
            {
                Id = id, Family = "mpc", Scheme = scheme.Name, Shape = shape, Where = "in-process",
                KeyGenerationMs = keygen, Sign = sign, VerifyUs = verify.P50Us, SignatureBytes = sig.Length,
                SecurityProfile = $"{t} of the {n} signer nodes (each holds one share under its own key-encryption key; fewer learn nothing)",
                Note = "all t signers' arithmetic in one process (dealer keygen; commit, share and verified aggregation per signature)",
            });
        }
    }

    /// <summary>
    /// A Safe multisig signature: the SafeTx hash (EIP-712, Safe 1.4.1), t owners' ECDSA signatures and their packing
    /// in owner order. What the chain then does (ecrecover per owner in checkNSignatures) is not timed here.
    /// </summary>
    private static void Safe(BenchContext ctx, string shape)
    {
        string id = $"safe-multisig/{shape}";
        if (!Wanted(ctx.Settings.Schemes, "safe-multisig") || !ctx.Begin(id))
        {
            return;
        }

        (int t, int n) = Shapes.Parse(shape);
        var owners = new List<SoftwareSigningKey>();
        double keygen = Sampler.Once(() =>
        {
            for (int i = 0; i < n; i++)
            {
                owners.Add(SignatureSchemes.EcdsaSecp256k1.GenerateKey());
            }
        });
        try
        {
            byte[] safe = RandomNumberGenerator.GetBytes(20);
            byte[] to = RandomNumberGenerator.GetBytes(20);
            long nonce = 0;
            byte[] packed = [];
            byte[] lastHash = [];
            Latency sign = ctx.Sampler.Sequential(() =>
            {
                var tx = SafeTransaction.Call(to, 1_000_000, s_message, nonce++);
                byte[] hash = tx.Hash(1, safe);
                var sigs = new List<(byte[], int)>(t);
                for (int i = 0; i < t; i++)
                {
                    SignatureResult r = owners[i].Sign(hash);
                    sigs.Add((r.Signature, r.RecoveryId!.Value));
                }

                packed = SafeSignatures.Pack(hash, sigs);
                lastHash = hash;
            });
            byte[] h = lastHash, p = packed;
            Latency verify = ctx.Sampler.Sequential(() => SafeSignatures.RecoverOwners(h, p));
            ctx.Add(new BenchRow
            {
                Id = id, Family = "multisig", Scheme = "safe-1.4.1 (ecdsa-secp256k1 owners)", Shape = shape, Where = "in-process",
                KeyGenerationMs = keygen, Sign = sign, VerifyUs = verify.P50Us, SignatureBytes = packed.Length,
                SecurityProfile = $"{t} of the {n} owner keys, each held whole by its owner; the quorum is enforced on chain",
                Note = "SafeTx hash, t owner signatures and packing; verify = recovering every owner as checkNSignatures does",
            });
        }
        finally
        {
            foreach (SoftwareSigningKey k in owners)
            {
                k.Dispose();
            }
        }
    }
}

/// <summary>Quorum shapes written "t-of-n".</summary>
internal static class Shapes
{
    public static (int T, int N) Parse(string shape)
    {
        string[] parts = shape.Split("-of-");
        if (parts.Length != 2
            || !int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int t)
            || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n)
            || t < 2 || n < t || n > 100)
        {
            throw new ArgumentException($"a shape is written t-of-n with 2 <= t <= n <= 100 (got '{shape}')");
        }

        return (t, n);
    }
}
