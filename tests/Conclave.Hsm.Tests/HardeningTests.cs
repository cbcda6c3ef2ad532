using System.Security.Cryptography;
using Conclave.Crypto.Signing;
using Conclave.Hsm.Internal;
using Conclave.Hsm.Schemes;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using Net.Pkcs11Interop.HighLevelAPI.Factories;

namespace Conclave.Hsm.Tests;

/// <summary>Issue 14 item 13: keys that were ever exposed, re-login after the token logs out, asynchronous session waits.</summary>
public sealed class HardeningTests(SharedTokenFixture fixture) : IClassFixture<SharedTokenFixture>
{
    private static readonly byte[] Secp256k1Oid = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A];

    private HsmToken Token => fixture.Token;

    [Fact]
    public void AKeyThatWasOnceExtractableIsRefused()
    {
        // Generated extractable, then switched to CKA_EXTRACTABLE=false: the token keeps CKA_NEVER_EXTRACTABLE=false.
        string id = fixture.TrackKey(SharedTokenFixture.NewKeyId("was-extractable"));
        GenerateThenTighten(id, sensitiveAtFirst: true, extractableAtFirst: true);

        HsmException e = Assert.Throws<HsmException>(() => Token.OpenKey(id));
        Assert.Equal(HsmErrorKind.KeyNotUsable, e.Kind);
        Assert.Contains(id, e.Message, StringComparison.Ordinal);
        Assert.Contains("CKA_NEVER_EXTRACTABLE=false", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AKeyThatWasOnceNotSensitiveIsRefused()
    {
        string id = fixture.TrackKey(SharedTokenFixture.NewKeyId("was-readable"));
        GenerateThenTighten(id, sensitiveAtFirst: false, extractableAtFirst: false);

        HsmException e = Assert.Throws<HsmException>(() => Token.OpenKey(id));
        Assert.Equal(HsmErrorKind.KeyNotUsable, e.Kind);
        Assert.Contains(id, e.Message, StringComparison.Ordinal);
        Assert.Contains("CKA_ALWAYS_SENSITIVE=false", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AKeyEncryptionKeyThatWasOnceExtractableIsRefused()
    {
        string id = fixture.TrackKey(SharedTokenFixture.NewKeyId("kek-was-extractable"), kek: true);
        using (SessionPool.Lease lease = Token.Pool.Rent())
        {
            IObjectAttributeFactory af = Token.Factories.ObjectAttributeFactory;
            using IMechanism gen = Token.Factories.MechanismFactory.Create(CKM.CKM_AES_KEY_GEN);
            IObjectHandle key = lease.Session.GenerateKey(gen,
            [
                af.Create(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), af.Create(CKA.CKA_KEY_TYPE, CKK.CKK_AES), af.Create(CKA.CKA_VALUE_LEN, 32UL),
                af.Create(CKA.CKA_TOKEN, true), af.Create(CKA.CKA_PRIVATE, true), af.Create(CKA.CKA_SENSITIVE, true),
                af.Create(CKA.CKA_EXTRACTABLE, true), af.Create(CKA.CKA_ENCRYPT, true), af.Create(CKA.CKA_DECRYPT, true),
                af.Create(CKA.CKA_LABEL, id),
            ]);
            lease.Session.SetAttributeValue(key, [af.Create(CKA.CKA_EXTRACTABLE, false)]);
        }

        HsmException e = Assert.Throws<HsmException>(() => Token.OpenKeyEncryptionKey(id));
        Assert.Equal(HsmErrorKind.KeyNotUsable, e.Kind);
        Assert.Contains(id, e.Message, StringComparison.Ordinal);
        Assert.Contains("CKA_NEVER_EXTRACTABLE=false", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SigningWorksAgainAfterTheTokenLoggedOut()
    {
        using SoftHsm.TemporaryToken temp = SoftHsm.CreateToken();
        using (HsmToken token = HsmToken.Open(temp.Options))
        {
            using HsmSigningKey key = token.GenerateKey(HsmSignatureSchemes.EcdsaSecp256k1, "relogin");
            byte[] digest = SHA256.HashData("before"u8);
            Assert.True(key.Scheme.Verify(key.PublicKey.Span, digest, key.Sign(digest).Signature));

            // Log the application out behind the pool's back (as a token reset or another library call would).
            using (SessionPool.Lease lease = token.Pool.Rent())
            {
                lease.Session.Logout();
                Assert.False(SessionPool.IsLoggedIn(lease.Session));
            }

            digest = SHA256.HashData("after logout"u8);
            Assert.True(key.Scheme.Verify(key.PublicKey.Span, digest, key.Sign(digest).Signature));

            // Again, with every session of the application closed (C_CloseAllSessions, which also logs it out).
            token.Slot.CloseAllSessions();
            digest = SHA256.HashData("after closing all sessions"u8);
            Assert.True(key.Scheme.Verify(key.PublicKey.Span, digest, key.Sign(digest).Signature));
        }
    }

    [Fact]
    public async Task WaitingForASessionDoesNotBlockTheCaller()
    {
        using SoftHsm.TemporaryToken temp = SoftHsm.CreateToken();
        var options = new HsmOptions { ModulePath = temp.Options.ModulePath, TokenLabel = temp.Label, PinFile = temp.Options.PinFile, SessionPoolSize = 1 };
        using HsmToken token = HsmToken.Open(options);
        using HsmSigningKey key = token.GenerateKey(HsmSignatureSchemes.Ed25519, "async");
        byte[] message = "waits without a thread"u8.ToArray();

        Task<SignatureResult> pending;
        using (SessionPool.Lease only = token.Pool.Rent())
        {
            // The only session is taken: SignAsync must hand back an unfinished task instead of blocking this thread.
            pending = key.SignAsync(message);
            Assert.False(pending.IsCompleted);
        }

        SignatureResult signature = await pending;
        Assert.True(key.Scheme.Verify(key.PublicKey.Span, message, signature.Signature));
    }

    [Fact]
    public async Task SignAsyncAfterLogoutLogsInAgain()
    {
        using SoftHsm.TemporaryToken temp = SoftHsm.CreateToken();
        using HsmToken token = HsmToken.Open(temp.Options);
        using HsmSigningKey key = token.GenerateKey(HsmSignatureSchemes.EcdsaSecp256k1, "relogin-async");
        token.Slot.CloseAllSessions();
        byte[] digest = SHA256.HashData("async after closing all sessions"u8);
        SignatureResult signature = await key.SignAsync(digest);
        Assert.True(key.Scheme.Verify(key.PublicKey.Span, digest, signature.Signature));
    }

    private void GenerateThenTighten(string id, bool sensitiveAtFirst, bool extractableAtFirst)
    {
        using SessionPool.Lease lease = Token.Pool.Rent();
        IObjectAttributeFactory af = Token.Factories.ObjectAttributeFactory;
        using IMechanism mechanism = Token.Factories.MechanismFactory.Create(CKM.CKM_EC_KEY_PAIR_GEN);
        lease.Session.GenerateKeyPair(
            mechanism,
            [af.Create(CKA.CKA_TOKEN, true), af.Create(CKA.CKA_VERIFY, true), af.Create(CKA.CKA_EC_PARAMS, Secp256k1Oid), af.Create(CKA.CKA_LABEL, id)],
            [
                af.Create(CKA.CKA_TOKEN, true), af.Create(CKA.CKA_PRIVATE, true), af.Create(CKA.CKA_SIGN, true),
                af.Create(CKA.CKA_SENSITIVE, sensitiveAtFirst), af.Create(CKA.CKA_EXTRACTABLE, extractableAtFirst), af.Create(CKA.CKA_LABEL, id),
            ],
            out _,
            out IObjectHandle priv);
        // SoftHSM2 refuses to set an attribute that is already at its final value, so change only the one that differs.
        lease.Session.SetAttributeValue(priv, [sensitiveAtFirst ? af.Create(CKA.CKA_EXTRACTABLE, false) : af.Create(CKA.CKA_SENSITIVE, true)]);
        List<IObjectAttribute> now = lease.Session.GetAttributeValue(priv, [CKA.CKA_SENSITIVE, CKA.CKA_EXTRACTABLE]);
        Assert.True(now[0].GetValueAsBool());
        Assert.False(now[1].GetValueAsBool());
    }
}
