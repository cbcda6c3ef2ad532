using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Signing;
using Conclave.Hsm.Interop;
using Conclave.Hsm.Schemes;

namespace Conclave.Hsm.Tests;

/// <summary>
/// Tests that load and finalize the module themselves (no class fixture holds it), on throw-away tokens.
/// The assembly runs test classes one at a time, so "not loaded" here means a real C_Finalize happened.
/// </summary>
public sealed class RestartAndErrorTests
{
    [Fact]
    public void KeysAndKekSurviveARestart()
    {
        using SoftHsm.TemporaryToken temp = SoftHsm.CreateToken();
        byte[] ecdsaPublic, edPublic, wrapped;
        byte[] dataKey = TestSeed.Bytes(32, "data key");
        using (HsmToken token = HsmToken.Open(temp.Options))
        {
            using HsmSigningKey ecdsa = token.GenerateKey(HsmSignatureSchemes.EcdsaSecp256k1, "settlement-1");
            using HsmSigningKey ed = token.GenerateKey(HsmSignatureSchemes.Ed25519, "solana-1");
            ecdsaPublic = ecdsa.PublicKey.ToArray();
            edPublic = ed.PublicKey.ToArray();
            wrapped = token.CreateKeyEncryptionKey("store-kek").Wrap(dataKey);
        }

        // Every session closed and the module finalized and unloaded: the next open is a cold start.
        Assert.False(Pkcs11Module.IsLoaded(SoftHsm.ModulePath));

        using (HsmToken token = HsmToken.Open(temp.Options))
        {
            using HsmSigningKey ecdsa = token.OpenKey("settlement-1");
            using HsmSigningKey ed = token.OpenKey("solana-1");
            Assert.Equal(ecdsaPublic, ecdsa.PublicKey.ToArray());
            Assert.Equal(edPublic, ed.PublicKey.ToArray());
            Assert.Same(HsmSignatureSchemes.EcdsaSecp256k1, ecdsa.Scheme);
            Assert.Same(HsmSignatureSchemes.Ed25519, ed.Scheme);

            byte[] digest = SHA256.HashData("after restart"u8);
            SignatureResult s1 = ecdsa.Sign(digest);
            Assert.True(SignatureSchemes.EcdsaSecp256k1.Verify(ecdsaPublic, digest, s1.Signature));
            SignatureResult s2 = ed.Sign("after restart"u8);
            Assert.True(SignatureSchemes.Ed25519.Verify(edPublic, "after restart"u8, s2.Signature));

            using SecretBuffer unwrapped = token.OpenKeyEncryptionKey("store-kek").Unwrap(wrapped);
            Assert.True(unwrapped.FixedTimeEquals(dataKey));
            Assert.Equal(["settlement-1", "solana-1"], token.ListKeys().Select(k => k.Id));
        }

        Assert.False(Pkcs11Module.IsLoaded(SoftHsm.ModulePath));
    }

    [Fact]
    public void TwoTokensShareOneModuleAndOneLogin()
    {
        using HsmToken first = HsmToken.Open(SoftHsm.Options(poolSize: 2));
        using (HsmToken second = HsmToken.Open(SoftHsm.Options(poolSize: 2)))
        {
            Assert.True(second.Supports(HsmSignatureSchemes.Ed25519));
        }

        // Disposing the second closed only its own sessions; the first stays logged in and the module loaded.
        Assert.True(Pkcs11Module.IsLoaded(SoftHsm.ModulePath));
        _ = first.ListKeys();
    }

    [Fact]
    public void WrongPinIsReportedWithoutThePin()
    {
        using SoftHsm.TemporaryToken temp = SoftHsm.CreateToken();
        string wrongPinFile = Path.Combine(temp.Directory, "wrong.pin");
        const string WrongPin = "definitely-not-the-pin-4711";
        File.WriteAllText(wrongPinFile, WrongPin);
        File.SetUnixFileMode(wrongPinFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        HsmOptions options = new() { ModulePath = temp.Options.ModulePath, TokenLabel = temp.Label, PinFile = wrongPinFile };

        HsmException e = Assert.Throws<HsmException>(() => HsmToken.Open(options));
        Assert.Equal(HsmErrorKind.WrongPin, e.Kind);
        Assert.Equal("CKR_PIN_INCORRECT", e.ReturnCode);
        Assert.Contains(temp.Label, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(WrongPin, e.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(File.ReadAllText(temp.Options.PinFile!).Trim(), e.ToString(), StringComparison.Ordinal);
        Assert.False(Pkcs11Module.IsLoaded(SoftHsm.ModulePath));

        // The right PIN from an environment variable still works afterwards.
        string variable = "CONCLAVE_TEST_PIN_" + Environment.ProcessId;
        Environment.SetEnvironmentVariable(variable, File.ReadAllText(temp.Options.PinFile!).Trim());
        try
        {
            using HsmToken token = HsmToken.Open(new HsmOptions { ModulePath = temp.Options.ModulePath, TokenLabel = temp.Label, PinEnvironmentVariable = variable });
            Assert.Empty(token.ListKeys());
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void MissingTokenIsReportedWithTheTokensPresent()
    {
        HsmOptions options = new() { ModulePath = SoftHsm.ModulePath, TokenLabel = "no-such-token", PinFile = SoftHsm.PinFile };
        HsmException e = Assert.Throws<HsmException>(() => HsmToken.Open(options));
        Assert.Equal(HsmErrorKind.TokenNotFound, e.Kind);
        Assert.Contains("'no-such-token'", e.Message, StringComparison.Ordinal);
        Assert.Contains($"'{SoftHsm.TokenLabel}'", e.Message, StringComparison.Ordinal);
        Assert.False(Pkcs11Module.IsLoaded(SoftHsm.ModulePath));
    }

    [Fact]
    public void MissingModuleIsReported()
    {
        string path = Path.Combine(Path.GetTempPath(), "no-such-dir-" + Environment.ProcessId, "libpkcs11.so");
        HsmException e = Assert.Throws<HsmException>(() => HsmToken.Open(new HsmOptions { ModulePath = path, TokenLabel = "t", PinFile = SoftHsm.PinFile }));
        Assert.Equal(HsmErrorKind.ModuleNotFound, e.Kind);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("softhsm2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFileThatIsNotAModuleIsReported()
    {
        string dir = Directory.CreateTempSubdirectory("conclave-hsm-test-").FullName;
        try
        {
            string path = Path.Combine(dir, "not-a-module.so");
            File.WriteAllBytes(path, TestSeed.Bytes(256, "not a module"));
            HsmException e = Assert.Throws<HsmException>(() => HsmToken.Open(new HsmOptions { ModulePath = path, TokenLabel = "t", PinFile = SoftHsm.PinFile }));
            Assert.Equal(HsmErrorKind.ModuleLoadFailed, e.Kind);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ABusyPoolTimesOutClearly()
    {
        var options = new HsmOptions
        {
            ModulePath = SoftHsm.ModulePath,
            TokenLabel = SoftHsm.TokenLabel,
            PinFile = SoftHsm.PinFile,
            SessionPoolSize = 1,
            SessionAcquireTimeout = TimeSpan.FromMilliseconds(50),
        };
        using HsmToken token = HsmToken.Open(options);
        using (Internal.SessionPool.Lease held = token.Pool.Rent())
        {
            HsmException e = Assert.Throws<HsmException>(() => token.ListKeys());
            Assert.Equal(HsmErrorKind.SessionPoolExhausted, e.Kind);
        }

        _ = token.ListKeys();
    }

    [Fact]
    public void ASmallPoolServesManyThreads()
    {
        using HsmToken token = HsmToken.Open(SoftHsm.Options(poolSize: 2));
        string id = SharedTokenFixture.NewKeyId("pool2");
        using HsmSigningKey key = token.GenerateKey(HsmSignatureSchemes.Ed25519, id);
        try
        {
            int ok = 0;
            Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            {
                byte[] message = BitConverter.GetBytes(i);
                if (key.Scheme.Verify(key.PublicKey.Span, message, key.Sign(message).Signature))
                {
                    Interlocked.Increment(ref ok);
                }
            });
            Assert.Equal(64, ok);
            Assert.InRange(token.Pool.OpenedCount, 1, 2);
        }
        finally
        {
            token.DeleteKey(id);
        }
    }
}
