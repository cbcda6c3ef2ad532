using Conclave.Hsm.Internal;
using Conclave.Hsm.Schemes;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace Conclave.Hsm.Tests;

/// <summary>The private keys and the KEK never leave the token: every way PKCS#11 offers to get them out is refused.</summary>
public sealed class ExportRefusalTests(SharedTokenFixture fixture) : IClassFixture<SharedTokenFixture>
{
    private HsmToken Token => fixture.Token;

    public static TheoryData<string> SchemeNames => new() { HsmEcdsaSecp256k1.SchemeName, HsmEd25519.SchemeName };

    [Theory]
    [MemberData(nameof(SchemeNames))]
    public void PrivateKeyValueCannotBeRead(string schemeName)
    {
        Assert.True(HsmSignatureSchemes.TryGet(schemeName, out HsmSignatureScheme? scheme));
        using HsmSigningKey key = fixture.Generate(scheme!, "export");
        using SessionPool.Lease lease = Token.Pool.Rent();
        ISession session = lease.Session;

        // C_GetAttributeValue(CKA_VALUE) on a sensitive key: CKR_ATTRIBUTE_SENSITIVE, reported as unreadable.
        List<IObjectAttribute> value = session.GetAttributeValue(key.PrivateKeyHandle, [CKA.CKA_VALUE]);
        Assert.True(value[0].CannotBeRead);

        List<IObjectAttribute> flags = session.GetAttributeValue(key.PrivateKeyHandle,
            [CKA.CKA_SENSITIVE, CKA.CKA_EXTRACTABLE, CKA.CKA_ALWAYS_SENSITIVE, CKA.CKA_NEVER_EXTRACTABLE, CKA.CKA_TOKEN]);
        Assert.True(flags[0].GetValueAsBool());
        Assert.False(flags[1].GetValueAsBool());
        Assert.True(flags[2].GetValueAsBool());
        Assert.True(flags[3].GetValueAsBool());
        Assert.True(flags[4].GetValueAsBool());
    }

    [Theory]
    [MemberData(nameof(SchemeNames))]
    public void PrivateKeyCannotBeWrappedOut(string schemeName)
    {
        Assert.True(HsmSignatureSchemes.TryGet(schemeName, out HsmSignatureScheme? scheme));
        using HsmSigningKey key = fixture.Generate(scheme!, "wrapout");
        using SessionPool.Lease lease = Token.Pool.Rent();
        ISession session = lease.Session;
        IObjectHandle wrapping = SessionWrappingKey(session);
        try
        {
            using IMechanism mechanism = Token.Factories.MechanismFactory.Create(CKM.CKM_AES_KEY_WRAP_PAD);
            Pkcs11Exception e = Assert.Throws<Pkcs11Exception>(() => session.WrapKey(mechanism, wrapping, key.PrivateKeyHandle));
            Assert.Equal(CKR.CKR_KEY_UNEXTRACTABLE, e.RV);
        }
        finally
        {
            session.DestroyObject(wrapping);
        }
    }

    [Theory]
    [MemberData(nameof(SchemeNames))]
    public void ProtectionCannotBeLowered(string schemeName)
    {
        Assert.True(HsmSignatureSchemes.TryGet(schemeName, out HsmSignatureScheme? scheme));
        using HsmSigningKey key = fixture.Generate(scheme!, "lower");
        using SessionPool.Lease lease = Token.Pool.Rent();
        ISession session = lease.Session;
        IObjectAttributeFactoryShim af = new(Token);
        Assert.Throws<Pkcs11Exception>(() => session.SetAttributeValue(key.PrivateKeyHandle, [af.Bool(CKA.CKA_EXTRACTABLE, true)]));
        Assert.Throws<Pkcs11Exception>(() => session.SetAttributeValue(key.PrivateKeyHandle, [af.Bool(CKA.CKA_SENSITIVE, false)]));
        Assert.True(session.GetAttributeValue(key.PrivateKeyHandle, [CKA.CKA_VALUE])[0].CannotBeRead);
    }

    [Fact]
    public void KeyEncryptionKeyCannotBeReadOrWrappedOut()
    {
        string id = fixture.TrackKey(SharedTokenFixture.NewKeyId("kek-export"), kek: true);
        _ = Token.CreateKeyEncryptionKey(id);
        using SessionPool.Lease lease = Token.Pool.Rent();
        ISession session = lease.Session;
        IObjectHandle kek = Token.FindSingle(session, CKO.CKO_SECRET_KEY, id)!;
        Assert.True(session.GetAttributeValue(kek, [CKA.CKA_VALUE])[0].CannotBeRead);
        IObjectHandle wrapping = SessionWrappingKey(session);
        try
        {
            using IMechanism mechanism = Token.Factories.MechanismFactory.Create(CKM.CKM_AES_KEY_WRAP_PAD);
            Pkcs11Exception e = Assert.Throws<Pkcs11Exception>(() => session.WrapKey(mechanism, wrapping, kek));
            Assert.Equal(CKR.CKR_KEY_UNEXTRACTABLE, e.RV);
        }
        finally
        {
            session.DestroyObject(wrapping);
        }
    }

    [Fact]
    public void AnExtractableKeyIsNotAccepted()
    {
        // A key made outside Conclave's rules (extractable, not sensitive) is refused when opened.
        string id = fixture.TrackKey(SharedTokenFixture.NewKeyId("weak"));
        using (SessionPool.Lease lease = Token.Pool.Rent())
        {
            var af = new IObjectAttributeFactoryShim(Token);
            byte[] oid = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A];
            using IMechanism mechanism = Token.Factories.MechanismFactory.Create(CKM.CKM_EC_KEY_PAIR_GEN);
            lease.Session.GenerateKeyPair(
                mechanism,
                [af.Bool(CKA.CKA_TOKEN, true), af.Bool(CKA.CKA_VERIFY, true), af.Bytes(CKA.CKA_EC_PARAMS, oid), af.Text(CKA.CKA_LABEL, id)],
                [af.Bool(CKA.CKA_TOKEN, true), af.Bool(CKA.CKA_SIGN, true), af.Bool(CKA.CKA_SENSITIVE, false), af.Bool(CKA.CKA_EXTRACTABLE, true), af.Text(CKA.CKA_LABEL, id)],
                out _,
                out _);
        }

        HsmException e = Assert.Throws<HsmException>(() => Token.OpenKey(id));
        Assert.Equal(HsmErrorKind.KeyNotUsable, e.Kind);
        Assert.Contains("extractable", e.Message, StringComparison.Ordinal);
    }

    private IObjectHandle SessionWrappingKey(ISession session)
    {
        var af = new IObjectAttributeFactoryShim(Token);
        using IMechanism gen = Token.Factories.MechanismFactory.Create(CKM.CKM_AES_KEY_GEN);
        return session.GenerateKey(gen,
        [
            af.Ulong(CKA.CKA_CLASS, (ulong)CKO.CKO_SECRET_KEY), af.Ulong(CKA.CKA_KEY_TYPE, (ulong)CKK.CKK_AES), af.Ulong(CKA.CKA_VALUE_LEN, 32),
            af.Bool(CKA.CKA_TOKEN, false), af.Bool(CKA.CKA_WRAP, true), af.Bool(CKA.CKA_UNWRAP, true),
        ]);
    }

    private readonly struct IObjectAttributeFactoryShim(HsmToken token)
    {
        public IObjectAttribute Bool(CKA type, bool value) => token.Factories.ObjectAttributeFactory.Create(type, value);

        public IObjectAttribute Ulong(CKA type, ulong value) => token.Factories.ObjectAttributeFactory.Create(type, value);

        public IObjectAttribute Bytes(CKA type, byte[] value) => token.Factories.ObjectAttributeFactory.Create(type, value);

        public IObjectAttribute Text(CKA type, string value) => token.Factories.ObjectAttributeFactory.Create(type, value);
    }
}
