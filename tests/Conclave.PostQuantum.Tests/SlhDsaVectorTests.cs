using System.Reflection;
using System.Text.Json.Nodes;
using Conclave.Crypto.Signing;
using Org.BouncyCastle.Crypto.Parameters;

namespace Conclave.PostQuantum.Tests;

/// <summary>NIST ACVP SLH-DSA (FIPS 205) keyGen (all twelve parameter sets) and sigVer.</summary>
public sealed class SlhDsaVectorTests
{
    private static SlhDsaSignatureScheme Scheme(string parameterSet) =>
        (SlhDsaSignatureScheme)(PostQuantumSchemes.TryGet(Acvp.SchemeName(parameterSet), out SoftwareSignatureScheme? s) ? s! : throw new InvalidOperationException(parameterSet));

    [Fact]
    public void AcvpKeyGen_StoredSeedsGiveThePublicKey()
    {
        JsonObject file = Acvp.Load("slh-dsa/acvp/SLH-DSA-keyGen-FIPS205/internalProjection.json");
        int count = 0;
        var sets = new HashSet<string>();
        foreach ((JsonObject group, JsonObject test) in Acvp.Tests(file))
        {
            string set = Acvp.Str(group, "parameterSet");
            // The slow "s" sets: 3 tests each keep the run short; the "f" sets run all 10.
            if (set.EndsWith('s') && (test["tcId"]!.GetValue<int>() - 1) % 10 >= 3)
            {
                continue;
            }

            SlhDsaSignatureScheme scheme = Scheme(set);
            byte[] seeds = [.. Acvp.Bytes(test, "skSeed"), .. Acvp.Bytes(test, "skPrf"), .. Acvp.Bytes(test, "pkSeed")];
            using SoftwareSigningKey key = scheme.ImportPrivateKey(seeds);
            Assert.Equal(Acvp.Bytes(test, "pk"), key.PublicKey.ToArray());
            // FIPS 205 §9.1: SK = SK.seed ‖ SK.prf ‖ PK.seed ‖ PK.root; our stored key is its first 3n bytes.
            Assert.Equal(Acvp.Bytes(test, "sk"), (byte[])[.. seeds, .. key.PublicKey.Span[scheme.N..]]);
            sets.Add(set);
            count++;
        }

        Assert.Equal(12, sets.Count);
        Assert.Equal(6 * 10 + 6 * 3, count);
    }

    /// <summary>
    /// The sigVer file is the August 2024 ACVP revision, which tests slh_verify_internal (FIPS 205 Algorithm 20) on the
    /// raw message. Conclave exposes only the pure external interface (Algorithm 24, which prefixes 0 ‖ |ctx| ‖ ctx), so the
    /// vectors are run against the same BouncyCastle engine Conclave's verify calls, through its internal entry point
    /// (reflection on the pinned BouncyCastle 2.7.0). The external wrapper is checked separately by the sign/verify,
    /// context and interop tests.
    /// </summary>
    [Fact]
    public void AcvpSigVer_InternalInterface()
    {
        MethodInfo verifyInternal = typeof(SlhDsaPublicKeyParameters).GetMethod("VerifyInternal", BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new InvalidOperationException("BouncyCastle's SlhDsaPublicKeyParameters.VerifyInternal not found");
        JsonObject file = Acvp.Load("slh-dsa/acvp-2024-08-internal/SLH-DSA-sigVer-FIPS205/internalProjection.json");
        int passed = 0, failed = 0;
        foreach ((JsonObject group, JsonObject test) in Acvp.Tests(file))
        {
            SlhDsaSignatureScheme scheme = Scheme(Acvp.Str(group, "parameterSet"));
            byte[] pk = Acvp.Bytes(test, "pk"), msg = Acvp.Bytes(test, "message"), sig = Acvp.Bytes(test, "signature");
            bool expected = test["testPassed"]!.GetValue<bool>();
            bool actual = sig.Length == scheme.SignatureSizeInBytes
                && (bool)verifyInternal.Invoke(SlhDsaPublicKeyParameters.FromEncoding(scheme.Parameters, pk), [msg, 0, msg.Length, sig])!;
            Assert.True(expected == actual, $"tcId {test["tcId"]} ({test["reason"]}): expected {expected}");

            // The external interface never accepts these internal-interface signatures (domain separation of Algorithm 24).
            Assert.False(scheme.Verify(pk, msg, sig));
            _ = expected ? passed++ : failed++;
        }

        Assert.Equal(5, passed);
        Assert.Equal(30, failed);
    }
}
