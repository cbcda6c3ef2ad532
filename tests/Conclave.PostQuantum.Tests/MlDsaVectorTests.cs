using System.Text.Json.Nodes;
using Conclave.Crypto.Signing;
using Conclave.PostQuantum.Internal;
using Org.BouncyCastle.Crypto.Parameters;

namespace Conclave.PostQuantum.Tests;

/// <summary>NIST ACVP ML-DSA (FIPS 204) keyGen, sigGen and sigVer, and Wycheproof ML-DSA verify.</summary>
public sealed class MlDsaVectorTests
{
    private static MlDsaSignatureScheme Scheme(string parameterSet) =>
        (MlDsaSignatureScheme)(PostQuantumSchemes.TryGet(Acvp.SchemeName(parameterSet), out SoftwareSignatureScheme? s) ? s! : throw new InvalidOperationException(parameterSet));

    [Fact]
    public void AcvpKeyGen_SeedGivesPublicAndExpandedPrivateKey()
    {
        JsonObject file = Acvp.Load("ml-dsa/acvp/ML-DSA-keyGen-FIPS204/internalProjection.json");
        int count = 0, expandedChecked = 0;
        foreach ((JsonObject group, JsonObject test) in Acvp.Tests(file))
        {
            MlDsaSignatureScheme scheme = Scheme(Acvp.Str(group, "parameterSet"));
            byte[] seed = Acvp.Bytes(test, "seed");
            using (SoftwareSigningKey key = scheme.ImportPrivateKey(seed))
            {
                Assert.Equal(Acvp.Bytes(test, "pk"), key.PublicKey.ToArray());
            }

            if (test["sk"] is not null)
            {
                byte[] expanded = MLDsaPrivateKeyParameters.FromSeed(scheme.Parameters, seed).GetEncoded();
                Assert.Equal(Acvp.Bytes(test, "sk"), expanded);
                expandedChecked++;
            }

            count++;
        }

        Assert.Equal(75, count);
        Assert.Equal(15, expandedChecked);
    }

    [Fact]
    public void AcvpSigGen_PureExternal_DeterministicAndHedged()
    {
        JsonObject prompt = Acvp.Load("ml-dsa/acvp/ML-DSA-sigGen-FIPS204/prompt.json");
        JsonObject expected = Acvp.Load("ml-dsa/acvp/ML-DSA-sigGen-FIPS204/expectedResults.json");
        var signatures = Acvp.Tests(expected).ToDictionary(x => x.Test["tcId"]!.GetValue<int>(), x => Acvp.Bytes(x.Test, "signature"));
        int deterministic = 0, hedged = 0;
        foreach ((JsonObject group, JsonObject test) in Acvp.Tests(prompt))
        {
            Assert.Equal("external", Acvp.Str(group, "signatureInterface"));
            Assert.Equal("pure", Acvp.Str(group, "preHash"));
            MlDsaSignatureScheme scheme = Scheme(Acvp.Str(group, "parameterSet"));
            bool isDeterministic = group["deterministic"]!.GetValue<bool>();
            var sk = MLDsaPrivateKeyParameters.FromEncoding(scheme.Parameters, Acvp.Bytes(test, "sk"));
            var random = isDeterministic ? new FixedRandomSource() : new FixedRandomSource(Acvp.Bytes(test, "rnd"));
            byte[] signature = MlDsaCore.Sign(sk, Acvp.Bytes(test, "message"), Acvp.Bytes(test, "context"), isDeterministic, random);
            Assert.Equal(signatures[test["tcId"]!.GetValue<int>()], signature);
            Assert.True(scheme.Verify(sk.GetPublicKeyEncoded(), Acvp.Bytes(test, "message"), signature, Acvp.Bytes(test, "context")));
            _ = isDeterministic ? deterministic++ : hedged++;
        }

        Assert.Equal(18, deterministic);
        Assert.Equal(18, hedged);
    }

    [Fact]
    public void AcvpSigVer_PureExternal()
    {
        JsonObject file = Acvp.Load("ml-dsa/acvp/ML-DSA-sigVer-FIPS204/internalProjection.json");
        int passed = 0, failed = 0;
        foreach ((JsonObject group, JsonObject test) in Acvp.Tests(file))
        {
            MlDsaSignatureScheme scheme = Scheme(Acvp.Str(group, "parameterSet"));
            bool expected = test["testPassed"]!.GetValue<bool>();
            bool actual = scheme.Verify(Acvp.Bytes(test, "pk"), Acvp.Bytes(test, "message"), Acvp.Bytes(test, "signature"), Acvp.Bytes(test, "context"));
            Assert.True(expected == actual, $"tcId {test["tcId"]} ({test["reason"]}): expected {expected}");
            _ = expected ? passed++ : failed++;
        }

        Assert.Equal(45, passed + failed);
        Assert.True(passed > 0 && failed > 0);
    }

    [Theory]
    [InlineData("44")]
    [InlineData("65")]
    [InlineData("87")]
    public void WycheproofVerify(string level)
    {
        JsonObject file = Acvp.Load($"ml-dsa/wycheproof/mldsa_{level}_verify_test.json");
        MlDsaSignatureScheme scheme = Scheme($"ML-DSA-{level}");
        int valid = 0, invalid = 0, spkiCompared = 0;
        foreach ((JsonObject group, JsonObject test) in Acvp.Tests(file))
        {
            byte[] publicKey = Acvp.Bytes(group, "publicKey");
            if (publicKey.Length == scheme.PublicKeySizeInBytes)
            {
                // Our SubjectPublicKeyInfo encoding must equal Wycheproof's publicKeyDer byte for byte.
                Assert.Equal(Acvp.Bytes(group, "publicKeyDer"), PostQuantumPublicKeys.ExportSubjectPublicKeyInfo(scheme, publicKey));
                spkiCompared++;
            }

            bool expected = Acvp.Str(test, "result") == "valid";
            bool actual = scheme.Verify(publicKey, Acvp.Bytes(test, "msg"), Acvp.Bytes(test, "sig"), Acvp.Bytes(test, "ctx"));
            Assert.True(expected == actual, $"tcId {test["tcId"]} ({test["comment"]}): expected {expected}");
            _ = expected ? valid++ : invalid++;
        }

        Assert.True(valid > 10 && invalid > 10 && spkiCompared > 10);
    }
}
