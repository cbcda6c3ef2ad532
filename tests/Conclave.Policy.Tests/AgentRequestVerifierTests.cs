using System.Text;
using Conclave.Policy.HttpSignatures;

namespace Conclave.Policy.Tests;

/// <summary>Agent request authentication: signed, replayed, expired, wrong key, tampered, out of profile.</summary>
public sealed class AgentRequestVerifierTests : IDisposable
{
    private static readonly DateTimeOffset s_now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
    private const string Uri = "https://conclave.example:8443/v1/keys/k1/sign";
    private static readonly byte[] s_body = Encoding.UTF8.GetBytes("""{"operation":"liquidate","venue":"perpx","args":{"account":"0x1111111111111111111111111111111111111111","amount":"2"}}""");

    // The agents' keys derive from the run seed, the same for every test of the class (xunit makes an instance per test).
    private readonly HttpSigningKey _ed = HttpSigningKey.Ed25519FromSeed(TestSeed.Bytes(32, "agent-1", nameof(AgentRequestVerifierTests)));
    private readonly HttpSigningKey _p256 = HttpSigningKey.EcdsaP256(TestSeed.P256("agent-p256", nameof(AgentRequestVerifierTests)));
    private readonly HttpSigningKey _other = HttpSigningKey.Ed25519FromSeed(TestSeed.Bytes(32, "agent-2", nameof(AgentRequestVerifierTests)));
    private readonly NonceReplayWindow _window = new();
    private readonly AgentRequestVerifier _verifier;

    public AgentRequestVerifierTests()
    {
        _verifier = new AgentRequestVerifier(id => id switch
        {
            "agent-1" => _ed.PublicKey,
            "agent-p256" => _p256.PublicKey,
            _ => null,
        }, _window);
    }

    public void Dispose()
    {
        _ed.Dispose();
        _p256.Dispose();
        _other.Dispose();
    }

    private static HttpMessageComponents Request(SignedRequestHeaders h, string method = "POST", string uri = Uri) =>
        new HttpMessageComponents(method, uri).Add("Content-Digest", h.ContentDigest).Add("Signature-Input", h.SignatureInput).Add("Signature", h.Signature);

    private static SignedRequestHeaders Sign(HttpSigningKey key, string keyId, string nonce = "nonce-0123456789abcdef", int lifetime = 30, DateTimeOffset? at = null, string tag = AgentRequestVerifier.DefaultTag) =>
        HttpMessageSigner.SignAgentRequest("POST", Uri, s_body, key, keyId, nonce, at ?? s_now, TimeSpan.FromSeconds(lifetime), tag);

    [Fact]
    public void Ed25519_and_p256_agents_are_verified()
    {
        var r = _verifier.Verify(Request(Sign(_ed, "agent-1")), s_body, s_now.AddSeconds(1));
        Assert.True(r.IsValid, r.Message);
        Assert.Equal("agent-1", r.KeyId);
        var p = _verifier.Verify(Request(Sign(_p256, "agent-p256")), s_body, s_now);
        Assert.True(p.IsValid, p.Message);
    }

    [Fact]
    public void The_signature_input_names_exactly_the_agent_profile()
    {
        var h = Sign(_ed, "agent-1");
        Assert.Equal($"sig1=(\"@method\" \"@target-uri\" \"content-digest\");created={s_now.ToUnixTimeSeconds()};expires={s_now.ToUnixTimeSeconds() + 30};nonce=\"nonce-0123456789abcdef\";keyid=\"agent-1\";tag=\"conclave-agent\"", h.SignatureInput);
        Assert.Equal(ContentDigest.Create(s_body), h.ContentDigest);
    }

    [Fact]
    public void A_replay_is_refused_and_a_new_nonce_is_accepted()
    {
        var h = Sign(_ed, "agent-1");
        Assert.True(_verifier.Verify(Request(h), s_body, s_now).IsValid);
        Assert.Equal(HttpSignatureError.Replayed, _verifier.Verify(Request(h), s_body, s_now.AddSeconds(5)).Error);
        Assert.True(_verifier.Verify(Request(Sign(_ed, "agent-1", nonce: "nonce-fedcba9876543210")), s_body, s_now.AddSeconds(5)).IsValid);
        // The same nonce from another agent is that agent's own.
        Assert.True(_verifier.Verify(Request(Sign(_p256, "agent-p256")), s_body, s_now).IsValid);
    }

    [Fact]
    public void A_failed_request_does_not_burn_the_nonce()
    {
        var h = Sign(_ed, "agent-1");
        Assert.Equal(HttpSignatureError.DigestMismatch, _verifier.Verify(Request(h), [.. s_body, 0x20], s_now).Error);
        Assert.True(_verifier.Verify(Request(h), s_body, s_now).IsValid);
    }

    [Fact]
    public void Expired_future_and_too_long_signatures_are_refused()
    {
        Assert.Equal(HttpSignatureError.Expired, _verifier.Verify(Request(Sign(_ed, "agent-1")), s_body, s_now.AddSeconds(30)).Error);
        Assert.Equal(HttpSignatureError.NotYetValid, _verifier.Verify(Request(Sign(_ed, "agent-1", at: s_now.AddSeconds(10))), s_body, s_now).Error);
        Assert.True(_verifier.Verify(Request(Sign(_ed, "agent-1", at: s_now.AddSeconds(5))), s_body, s_now).IsValid);
        Assert.Throws<PolicyFormatException>(() => Sign(_ed, "agent-1", lifetime: 61));

        // A client that writes expires 61 s after created itself.
        var message = new HttpMessageComponents("POST", Uri).Add("content-digest", ContentDigest.Create(s_body));
        var (input, sig) = HttpMessageSigner.Sign(message, HttpMessageSigner.AgentComponents,
        [
            new("created", new SfItem(s_now.ToUnixTimeSeconds())), new("expires", new SfItem(s_now.ToUnixTimeSeconds() + 61)),
            new("nonce", new SfItem(new SfString("nonce-0123456789abcdef"))), new("keyid", new SfItem(new SfString("agent-1"))), new("tag", new SfItem(new SfString("conclave-agent"))),
        ], _ed);
        message.Add("signature-input", input).Add("signature", sig);
        Assert.Equal(HttpSignatureError.LifetimeTooLong, _verifier.Verify(message, s_body, s_now).Error);
    }

    [Fact]
    public void Wrong_key_unknown_key_and_wrong_tag_are_refused()
    {
        Assert.Equal(HttpSignatureError.BadSignature, _verifier.Verify(Request(Sign(_other, "agent-1")), s_body, s_now).Error);
        Assert.Equal(HttpSignatureError.UnknownKey, _verifier.Verify(Request(Sign(_other, "agent-revoked")), s_body, s_now).Error);
        Assert.Equal(HttpSignatureError.WrongTag, _verifier.Verify(Request(Sign(_ed, "agent-1", tag: "web-bot-auth")), s_body, s_now).Error);
    }

    [Fact]
    public void Tampered_body_method_or_target_uri_is_refused()
    {
        var h = Sign(_ed, "agent-1");
        Assert.Equal(HttpSignatureError.DigestMismatch, _verifier.Verify(Request(h), Encoding.UTF8.GetBytes("{\"operation\":\"transfer\"}"), s_now).Error);
        Assert.Equal(HttpSignatureError.BadSignature, _verifier.Verify(Request(h, method: "PUT"), s_body, s_now).Error);
        Assert.Equal(HttpSignatureError.BadSignature, _verifier.Verify(Request(h, uri: "https://conclave.example:8443/v1/keys/k2/sign"), s_body, s_now).Error);
        var forged = h with { ContentDigest = ContentDigest.Create("{}"u8) };
        Assert.Equal(HttpSignatureError.BadSignature, _verifier.Verify(Request(forged), "{}"u8, s_now).Error);
    }

    [Fact]
    public void Signatures_outside_the_agent_profile_are_refused()
    {
        var message = new HttpMessageComponents("POST", Uri).Add("content-digest", ContentDigest.Create(s_body));
        IReadOnlyList<KeyValuePair<string, SfItem>> full =
        [
            new("created", new SfItem(s_now.ToUnixTimeSeconds())), new("expires", new SfItem(s_now.ToUnixTimeSeconds() + 30)),
            new("nonce", new SfItem(new SfString("nonce-0123456789abcdef"))), new("keyid", new SfItem(new SfString("agent-1"))), new("tag", new SfItem(new SfString("conclave-agent"))),
        ];

        HttpSignatureError Check(IReadOnlyList<string> components, IReadOnlyList<KeyValuePair<string, SfItem>> ps)
        {
            var m = new HttpMessageComponents("POST", Uri).Add("content-digest", ContentDigest.Create(s_body));
            var (input, sig) = HttpMessageSigner.Sign(m, components, ps, _ed);
            return _verifier.Verify(m.Add("signature-input", input).Add("signature", sig), s_body, s_now).Error;
        }

        Assert.Equal(HttpSignatureError.WrongComponents, Check(["@method", "@target-uri"], full));
        Assert.Equal(HttpSignatureError.WrongComponents, Check(["@method", "@path", "content-digest"], full));
        Assert.Equal(HttpSignatureError.MissingParameter, Check(HttpMessageSigner.AgentComponents, full.Where(p => p.Key != "nonce").ToList()));
        Assert.Equal(HttpSignatureError.MissingParameter, Check(HttpMessageSigner.AgentComponents, full.Where(p => p.Key != "expires").ToList()));
        Assert.Equal(HttpSignatureError.UnexpectedParameter, Check(HttpMessageSigner.AgentComponents, [.. full, new("context", new SfItem(1L))]));
        Assert.Equal(HttpSignatureError.AlgorithmMismatch, Check(HttpMessageSigner.AgentComponents, [.. full, new("alg", new SfItem(new SfString("ecdsa-p256-sha256")))]));
        Assert.Equal(HttpSignatureError.None, Check(["content-digest", "@target-uri", "@method"], [.. full.Where(p => p.Key != "nonce"), new("nonce", new SfItem(new SfString("nonce-aaaaaaaaaaaaaaaa"))), new("alg", new SfItem(new SfString("ed25519")))]));
        Assert.Equal(HttpSignatureError.Malformed, Check(HttpMessageSigner.AgentComponents, [.. full.Where(p => p.Key != "nonce"), new("nonce", new SfItem(new SfString("short")))]));
    }

    [Theory]
    [InlineData("sig1=(\"@method\" \"@target-uri\" \"content-digest\";created=1", "sig1=:AAAA:", HttpSignatureError.Malformed)]
    [InlineData("sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1", "sig2=:AAAA:", HttpSignatureError.Malformed)]
    [InlineData("sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1, sig2=()", "sig1=:AAAA:, sig2=:AAAA:", HttpSignatureError.Malformed)]
    [InlineData("sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1", "sig1=\"AAAA\"", HttpSignatureError.Malformed)]
    [InlineData("sig1=(method \"@target-uri\" \"content-digest\")", "sig1=:AAAA:", HttpSignatureError.WrongComponents)]
    [InlineData("sig1=(@method)", "sig1=:AAAA:", HttpSignatureError.Malformed)]
    [InlineData("Sig1=()", "sig1=:AAAA:", HttpSignatureError.Malformed)]
    [InlineData("sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1.5", "sig1=:AAAA:", HttpSignatureError.Malformed)]
    public void Malformed_headers_are_refused_with_a_typed_error(string input, string signature, HttpSignatureError expected)
    {
        var m = new HttpMessageComponents("POST", Uri).Add("content-digest", ContentDigest.Create(s_body)).Add("signature-input", input).Add("signature", signature);
        Assert.Equal(expected, _verifier.Verify(m, s_body, s_now).Error);
    }

    [Fact]
    public void A_request_without_signature_headers_is_refused()
    {
        Assert.Equal(HttpSignatureError.MissingSignature, _verifier.Verify(new HttpMessageComponents("GET", Uri), [], s_now).Error);
    }

    [Fact]
    public void The_replay_window_forgets_expired_nonces_and_fails_closed_when_full()
    {
        var w = new NonceReplayWindow(capacity: 2);
        Assert.Equal(NonceOutcome.Fresh, w.TryRemember("a", "n1", s_now.AddSeconds(10), s_now));
        Assert.Equal(NonceOutcome.Fresh, w.TryRemember("a", "n2", s_now.AddSeconds(20), s_now));
        Assert.Equal(NonceOutcome.WindowFull, w.TryRemember("a", "n3", s_now.AddSeconds(20), s_now));
        Assert.Equal(NonceOutcome.Replayed, w.TryRemember("a", "n1", s_now.AddSeconds(10), s_now.AddSeconds(9)));
        Assert.Equal(NonceOutcome.Fresh, w.TryRemember("a", "n3", s_now.AddSeconds(30), s_now.AddSeconds(10)));
        Assert.Equal(2, w.Count);
    }

    [Fact]
    public void Signing_keys_are_disposable_and_refuse_use_after_dispose()
    {
        var k = HttpSigningKey.Ed25519FromSeed(new byte[32]);
        k.Dispose();
        k.Dispose();
        Assert.Throws<ObjectDisposedException>(() => k.Sign("x"));
        Assert.DoesNotContain("seed", k.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.Throws<PolicyFormatException>(() => HttpSigningKey.Ed25519FromSeed(new byte[31]));
    }
}
