using System.Text.Json;
using Conclave.Crypto;
using Conclave.Crypto.Memory;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Tests;

/// <summary>HD derivation (BIP-32 vectors for secp256k1), serialization round trips and property tests over random (t, n).</summary>
public sealed class HdAndPropertyTests
{
    public static TheoryData<string> Suites => new() { "frost-ed25519", "frost-secp256k1", "frost-taproot" };

    private static FrostCiphersuite Suite(string name) => FrostCiphersuite.TryGet(name, out FrostCiphersuite? s) ? s : throw new ArgumentException(name);

    /// <summary>
    /// BIP-32 test vectors 1 and 2: split each non-leaf private key with its chain code, derive the next
    /// non-hardened child on the threshold key, compare with the vector's child public key and chain code,
    /// and sign under the child key with child shares.
    /// </summary>
    [Theory]
    [InlineData("frost-secp256k1")]
    [InlineData("frost-taproot")]
    public void Bip32NonHardenedChildMatchesVectors(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector("bip32/bip32-test-vectors.json")));
        int checkedCount = 0;
        foreach (JsonElement v in doc.RootElement.GetProperty("vectors").EnumerateArray())
        {
            JsonElement[] chains = [.. v.GetProperty("chains").EnumerateArray()];
            for (int i = 0; i + 1 < chains.Length; i++)
            {
                uint[] parentPath = [.. chains[i].GetProperty("path_indices").EnumerateArray().Select(e => e.GetUInt32())];
                uint[] childPath = [.. chains[i + 1].GetProperty("path_indices").EnumerateArray().Select(e => e.GetUInt32())];
                if (childPath.Length != parentPath.Length + 1 || childPath[^1] >= HdDerivation.HardenedOffset)
                {
                    continue;
                }

                JsonElement p = chains[i].GetProperty("decoded"), c = chains[i + 1].GetProperty("decoded");
                using DealerOutput d = TrustedDealer.Split(suite, Hex.Decode(p.GetProperty("private_key").GetString()!), 2, TrustedDealer.Ids(suite, 3), rng, Hex.Decode(p.GetProperty("chain_code").GetString()!));
                Assert.Equal(Hex.Decode(p.GetProperty("public_key_compressed").GetString()!), d.PublicKeyPackage.GroupPublicKey);
                PublicKeyPackage child = HdDerivation.DeriveChild(d.PublicKeyPackage, childPath[^1]);
                Assert.Equal(Hex.Decode(c.GetProperty("public_key_compressed").GetString()!), child.GroupPublicKey);
                Assert.Equal(Hex.Decode(c.GetProperty("chain_code").GetString()!), child.ChainCode.ToArray());
                using KeyPackage k1 = HdDerivation.DeriveChild(d.KeyPackages[0], childPath[^1]);
                using KeyPackage k3 = HdDerivation.DeriveChild(d.KeyPackages[2], childPath[^1]);
                Assert.True(k1.PublicKeyPackage.PublicEquals(child));
                byte[] msg = "child"u8.ToArray();
                Assert.True(suite.Verify(child.VerificationKey, msg, Cluster.Sign([k1, k3], child, msg, rng)));
                checkedCount++;
            }
        }

        Assert.True(checkedCount >= 2);
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void DerivedPathSignsUnderChildKeyAndHardenedIsRefused(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
        uint[] path = [0, 7, 42];
        PublicKeyPackage child = HdDerivation.DerivePath(d.PublicKeyPackage, path);
        using KeyPackage a = HdDerivation.DerivePath(d.KeyPackages[0], path);
        using KeyPackage b = HdDerivation.DerivePath(d.KeyPackages[1], path);
        Assert.NotEqual(d.PublicKeyPackage.GroupPublicKey, child.GroupPublicKey);
        byte[] msg = "hd"u8.ToArray();
        byte[] sig = Cluster.Sign([a, b], child, msg, rng);
        Assert.True(suite.Verify(child.VerificationKey, msg, sig));
        Assert.False(suite.Verify(d.PublicKeyPackage.VerificationKey, msg, sig));
        Assert.Throws<ArgumentException>(() => HdDerivation.DeriveChild(d.PublicKeyPackage, HdDerivation.HardenedOffset));
        // The derived public key package survives serialization with its chain code.
        Assert.True(PublicKeyPackage.FromBytes(suite, child.ToBytes()).PublicEquals(child));
    }

    [Fact]
    public void TaprootTweakedKeySignsBip340UnderOutputKey()
    {
        FrostCiphersuite suite = FrostCiphersuite.Secp256k1Taproot;
        var rng = TestSeed.For("keys and signatures");
        for (int round = 0; round < 6; round++)
        {
            using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
            byte[] root = round % 2 == 0 ? [] : System.Security.Cryptography.SHA256.HashData([(byte)round]);
            PublicKeyPackage q = TaprootTweak.Apply(d.PublicKeyPackage, root);
            using KeyPackage a = TaprootTweak.Apply(d.KeyPackages[0], root);
            using KeyPackage b = TaprootTweak.Apply(d.KeyPackages[1], root);
            // Q = P_even + int(hashTapTweak(x(P) ‖ root))·G, computed independently here.
            byte[] px = d.PublicKeyPackage.VerificationKey;
            byte[] t = Conclave.Crypto.Hashing.TaggedHash.HashData("TapTweak", [.. px, .. root]);
            var p = Conclave.Crypto.Secp256k1.Secp256k1Point.ParseXOnly(px);
            var expected = p + Conclave.Crypto.Secp256k1.Secp256k1Point.MultiplyGenerator(Conclave.Crypto.Secp256k1.Secp256k1Scalar.FromBytes(t));
            Assert.Equal(expected.ToXOnly(), q.VerificationKey);
            byte[] msg = System.Security.Cryptography.SHA256.HashData([(byte)round, 1]);
            byte[] sig = Cluster.Sign([a, b], q, msg, rng);
            Assert.True(Conclave.Crypto.Secp256k1.SchnorrBip340.Instance.Verify(q.VerificationKey, msg, sig));
        }
    }

    /// <summary>
    /// KeyDerivation.Signing, the derivation the nodes and the coordinator sign with: frost-taproot = HD child of the
    /// internal key, then the BIP-86 tweak (Q computed independently here); the other suites = the HD child alone.
    /// Shares derived with it sign under it, and not under the untweaked child.
    /// </summary>
    [Theory]
    [MemberData(nameof(Suites))]
    public void SigningDerivation_IsTheChildThenForTaprootTheBip86Tweak(string name)
    {
        FrostCiphersuite suite = Suite(name);
        FrostScheme scheme = FrostScheme.Get(name);
        var rng = TestSeed.For(name);
        foreach (uint[] path in new[] { Array.Empty<uint>(), [7], [44, 0, 3] })
        {
            using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
            KeyDerivation derivation = KeyDerivation.Signing(suite, path);
            PublicKeyPackage child = HdDerivation.DerivePath(d.PublicKeyPackage, path);
            PublicKeyPackage signing = scheme.Derive(d.PublicKeyPackage, derivation);
            if (name == "frost-taproot")
            {
                Assert.NotNull(derivation.TaprootMerkleRoot);
                Assert.Empty(derivation.TaprootMerkleRoot);
                Assert.False(derivation.IsIdentity);
                byte[] px = child.VerificationKey;
                byte[] t = Conclave.Crypto.Hashing.TaggedHash.HashData("TapTweak", px);
                var q = Conclave.Crypto.Secp256k1.Secp256k1Point.ParseXOnly(px) + Conclave.Crypto.Secp256k1.Secp256k1Point.MultiplyGenerator(Conclave.Crypto.Secp256k1.Secp256k1Scalar.FromBytes(t));
                Assert.Equal(q.ToXOnly(), signing.VerificationKey);
            }
            else
            {
                Assert.Null(derivation.TaprootMerkleRoot);
                Assert.Equal(path.Length == 0, derivation.IsIdentity);
                Assert.True(child.PublicEquals(signing));
            }

            using KeyPackage a = scheme.Derive(d.KeyPackages[0], derivation);
            using KeyPackage b = scheme.Derive(d.KeyPackages[2], derivation);
            Assert.True(a.PublicKeyPackage.PublicEquals(signing));
            byte[] msg = [(byte)path.Length, 9];
            byte[] sig = Cluster.Sign([a, b], signing, msg, rng);
            Assert.True(suite.Verify(signing.VerificationKey, msg, sig));
            Assert.Equal(name != "frost-taproot", suite.Verify(child.VerificationKey, msg, sig));
            if (name == "frost-taproot")
            {
                // Shares made with the untweaked (child) shares do not aggregate under the tweaked key: both named.
                using KeyPackage ua = path.Length == 0 ? scheme.Derive(d.KeyPackages[0], KeyDerivation.None) : HdDerivation.DerivePath(d.KeyPackages[0], path);
                using KeyPackage ub = path.Length == 0 ? scheme.Derive(d.KeyPackages[2], KeyDerivation.None) : HdDerivation.DerivePath(d.KeyPackages[2], path);
                SigningNonces na = FrostSigner.Commit(ua, rng), nb = FrostSigner.Commit(ub, rng);
                var package = new SigningPackage(msg, [na.Commitments, nb.Commitments]);
                var shares = new[] { FrostSigner.Sign(package, na, ua), FrostSigner.Sign(package, nb, ub) };
                ThresholdProtocolException ex = Assert.Throws<ThresholdProtocolException>(() => FrostAggregator.Aggregate(package, shares, signing));
                Assert.Equal(2, ex.Culprits.Count);
            }
        }
    }

    /// <summary>Random (t, n) up to 10-of-15: any t or more signers sign; fewer cannot; every package round-trips.</summary>
    [Theory]
    [MemberData(nameof(Suites))]
    public void RandomThresholdsSignWithRandomQuorums(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rnd = TestSeed.Random("choices " + name);
        var rng = TestSeed.For(name);
        for (int trial = 0; trial < 6; trial++)
        {
            int n = rnd.Next(2, 16);
            int t = rnd.Next(2, Math.Min(n, 10) + 1);
            if (trial == 0)
            {
                (t, n) = (10, 15);
            }

            using DealerOutput d = TrustedDealer.Generate(suite, t, n, rng);
            PublicKeyPackage pkp = PublicKeyPackage.FromBytes(suite, d.PublicKeyPackage.ToBytes());
            int count = rnd.Next(t, n + 1);
            KeyPackage[] signers = [.. d.KeyPackages.OrderBy(_ => rnd.Next()).Take(count)];
            byte[] msg = new byte[rnd.Next(0, 200)];
            rnd.NextBytes(msg);
            var nonces = signers.Select(k => FrostSigner.Commit(k, rng)).ToList();
            var wire = nonces.Select(x => SigningCommitments.FromBytes(suite, x.Commitments.ToBytes()));
            var package = SigningPackage.FromBytes(suite, new SigningPackage(msg, wire).ToBytes());
            var shares = signers.Select((k, i) => SignatureShare.FromBytes(suite, FrostSigner.Sign(package, nonces[i], k).ToBytes())).ToList();
            byte[] sig = FrostAggregator.Aggregate(package, shares, pkp);
            Assert.True(suite.Verify(pkp.VerificationKey, msg, sig));
            using SecretBuffer secret = TrustedDealer.Reconstruct(signers);
            using SecretBuffer fewer = TrustedDealer.Reconstruct(signers.Length > t ? signers[..t] : signers);
            Assert.True(secret.FixedTimeEquals(fewer.ReadOnlySpan));
            if (t > 2)
            {
                // t − 1 signers: refused.
                var few = signers[..(t - 1)].Select(k => FrostSigner.Commit(k, rng)).ToList();
                Assert.Throws<ArgumentException>(() => FrostSigner.Sign(new SigningPackage(msg, few.Select(x => x.Commitments)), few[0], signers[0]));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void DkgWithRandomThresholds(string name)
    {
        FrostCiphersuite suite = Suite(name);
        var rnd = TestSeed.Random("choices " + name);
        var rng = TestSeed.For(name);
        foreach ((int t, int n) in new[] { (2, 2), (rnd.Next(2, 5), 5), (4, 7) })
        {
            IReadOnlyList<Identifier> ids = TrustedDealer.Ids(suite, n);
            var session = DkgSession.ForKeyGeneration(suite, Cluster.Sid($"prop-{t}-{n}"), t, ids);
            Dictionary<Identifier, KeyPackage> keys = Cluster.Run(session, null, rng);
            PublicKeyPackage pkp = keys[ids[0]].PublicKeyPackage;
            byte[] msg = [(byte)t, (byte)n];
            Assert.True(suite.Verify(pkp.VerificationKey, msg, Cluster.Sign([.. keys.Values.OrderBy(_ => rnd.Next()).Take(t)], pkp, msg, rng)));
            Cluster.DisposeAll(keys.Values);
        }
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void EncodingsAreStrict(string name)
    {
        FrostCiphersuite suite = Suite(name);
        FrostCiphersuite other = suite == FrostCiphersuite.Ed25519Sha512 ? FrostCiphersuite.Secp256k1Sha256 : FrostCiphersuite.Ed25519Sha512;
        var rng = TestSeed.For(name);
        using DealerOutput d = TrustedDealer.Generate(suite, 2, 3, rng);
        using SigningNonces nonces = FrostSigner.Commit(d.KeyPackages[0], rng);
        byte[][] encodings =
        [
            d.PublicKeyPackage.ToBytes(),
            nonces.Commitments.ToBytes(),
            new SigningPackage("m"u8, [nonces.Commitments, FrostSigner.Commit(d.KeyPackages[1], rng).Commitments]).ToBytes(),
        ];
        Func<byte[], object>[] parsers =
        [
            b => PublicKeyPackage.FromBytes(suite, b),
            b => SigningCommitments.FromBytes(suite, b),
            b => SigningPackage.FromBytes(suite, b),
        ];
        for (int i = 0; i < encodings.Length; i++)
        {
            byte[] e = encodings[i];
            _ = parsers[i](e);
            Assert.Throws<CryptoFormatException>(() => parsers[i]([.. e, 0]));            // trailing byte
            Assert.Throws<CryptoFormatException>(() => parsers[i](e[..^1]));            // truncated
            byte[] v = (byte[])e.Clone();
            v[0] = 2;
            Assert.Throws<CryptoFormatException>(() => parsers[i](v));                    // unknown version
            byte[] s = (byte[])e.Clone();
            s[2] = other.ToString() == "frost-ed25519" ? (byte)1 : (byte)2;
            Assert.Throws<CryptoFormatException>(() => parsers[i](s));                    // another suite
        }

        // Secret encodings: key package and nonces round-trip; a key package whose share does not match is refused.
        using SecretBuffer kp = d.KeyPackages[0].Export();
        using KeyPackage back = KeyPackage.Import(suite, kp.ReadOnlySpan);
        Assert.Equal(d.KeyPackages[0].Identifier, back.Identifier);
        byte[] tampered = kp.ReadOnlySpan.ToArray();
        tampered[3 + suite.ScalarSizeInBytes + 5] ^= 1;
        Assert.Throws<CryptoFormatException>(() => KeyPackage.Import(suite, tampered));
        using SecretBuffer nb = nonces.Export();
        using SigningNonces again = SigningNonces.Import(suite, nb.ReadOnlySpan);
        Assert.True(again.Commitments.SameAs(nonces.Commitments));
        Assert.DoesNotContain("share", back.ToString(), StringComparison.OrdinalIgnoreCase);
        back.Dispose();
        Assert.Throws<ObjectDisposedException>(() => back.Export());
    }
}
