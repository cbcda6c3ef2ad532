using System.Text;
using System.Text.Json;
using Conclave.Policy.HttpSignatures;

namespace Conclave.Policy.Tests;

/// <summary>RFC 9421 Appendix B and RFC 9530 vectors (tests/vectors/rfc9421/rfc9421-appendix-b.json).</summary>
public sealed class HttpSignatureVectorTests
{
    private static readonly JsonElement s_v = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector("rfc9421/rfc9421-appendix-b.json"))).RootElement;

    private static HttpMessageComponents Message(JsonElement v)
    {
        var m = v.TryGetProperty("status", out var st) ? HttpMessageComponents.Response(st.GetInt32())
            : new HttpMessageComponents(v.GetProperty("method").GetString()!, v.GetProperty("targetUri").GetString()!);
        foreach (var h in v.GetProperty("headers").EnumerateArray())
        {
            m.Add(h[0].GetString()!, h[1].GetString()!);
        }

        return m;
    }

    private static string Params(JsonElement v)
    {
        string input = v.GetProperty("signatureInput").GetString()!;
        return input[(input.IndexOf('=', StringComparison.Ordinal) + 1)..];
    }

    private static byte[] Signature(JsonElement v)
    {
        string s = v.GetProperty("signature").GetString()!;
        int start = s.IndexOf(":", StringComparison.Ordinal) + 1;
        return Convert.FromBase64String(s[start..^1]);
    }

    private static List<string> Components(JsonElement v) => [.. v.GetProperty("components").EnumerateArray().Select(c => c.GetString()!)];

    [Fact]
    public void B_2_6_ed25519_signature_base_and_signature_are_reproduced_byte_for_byte()
    {
        var v = s_v.GetProperty("b26");
        string? b = SignatureBase.Create(Message(v), Components(v), Params(v));
        Assert.Equal(v.GetProperty("signatureBase").GetString(), b);

        byte[] pkcs8 = Convert.FromBase64String(s_v.GetProperty("keys").GetProperty("test-key-ed25519").GetProperty("privatePkcs8Base64").GetString()!);
        using var key = HttpSigningKey.Ed25519FromSeed(pkcs8.AsSpan(pkcs8.Length - 32));
        byte[] spki = Convert.FromBase64String(s_v.GetProperty("keys").GetProperty("test-key-ed25519").GetProperty("publicSpkiBase64").GetString()!);
        Assert.Equal(spki[^32..], key.PublicKey.PublicKey);
        Assert.Equal(Signature(v), key.Sign(b!));
        Assert.True(key.PublicKey.Verify(b!, Signature(v)));

        var (input, signature) = HttpMessageSigner.Sign(Message(v), Components(v),
            [new("created", new SfItem(1618884473L)), new("keyid", new SfItem(new SfString("test-key-ed25519")))], key, "sig-b26");
        Assert.Equal(v.GetProperty("signatureInput").GetString(), input);
        Assert.Equal(v.GetProperty("signature").GetString(), signature);
    }

    [Fact]
    public void B_2_4_ecdsa_p256_signature_verifies_and_a_changed_base_does_not()
    {
        var v = s_v.GetProperty("b24");
        string? b = SignatureBase.Create(Message(v), Components(v), Params(v));
        Assert.Equal(v.GetProperty("signatureBase").GetString(), b);
        var key = HttpVerificationKey.FromP256SubjectPublicKeyInfo(Convert.FromBase64String(s_v.GetProperty("keys").GetProperty("test-key-ecc-p256").GetProperty("publicSpkiBase64").GetString()!));
        Assert.True(key.Verify(b!, Signature(v)));
        Assert.False(key.Verify(b!.Replace("200", "201", StringComparison.Ordinal), Signature(v)));
        byte[] flipped = Signature(v);
        flipped[5] ^= 1;
        Assert.False(key.Verify(b, flipped));
        Assert.False(key.Verify(b, flipped[..63]));
    }

    [Fact]
    public void Content_digest_vectors()
    {
        foreach (var c in s_v.GetProperty("contentDigest").EnumerateArray())
        {
            byte[] body = Encoding.UTF8.GetBytes(c.GetProperty("body").GetString()!);
            string header = c.GetProperty("header").GetString()!;
            if (header.StartsWith("sha-256", StringComparison.Ordinal))
            {
                Assert.Equal(header, ContentDigest.Create(body));
                Assert.True(ContentDigest.Verify(header, body));
            }
            else
            {
                // sha-512 alone is checked but not enough: Conclave requires sha-256.
                Assert.False(ContentDigest.Verify(header, body));
                Assert.True(ContentDigest.Verify(ContentDigest.Create(body) + ", " + header, body));
                Assert.False(ContentDigest.Verify(ContentDigest.Create(body) + ", " + header, [.. body, 0x20]));
            }
        }

        var b24 = s_v.GetProperty("b24");
        byte[] b24Body = Encoding.UTF8.GetBytes(b24.GetProperty("body").GetString()!);
        Assert.True(ContentDigest.Verify(ContentDigest.Create(b24Body) + ", " + Message(b24).Field("content-digest"), b24Body));
        Assert.False(ContentDigest.Verify("sha-256=:AAAA:", b24Body));
        Assert.False(ContentDigest.Verify("sha-256=AAAA", b24Body));
        Assert.False(ContentDigest.Verify(null, b24Body));
    }
}
