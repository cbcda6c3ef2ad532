using System.Security.Cryptography;
using Conclave.Policy.HttpSignatures;

namespace Conclave.Client;

/// <summary>
/// Signs every request as a principal (an agent) with an RFC 9421 HTTP Message Signature (issue 16; docs/POLICY.md
/// "Agent authentication"): adds the RFC 9530 <c>Content-Digest</c> of the body and a signature over
/// <c>"@method" "@target-uri" "content-digest"</c> with <c>created</c>, <c>expires</c> (created + lifetime, at most 60 s),
/// a fresh random <c>nonce</c>, the credential's <c>keyid</c> and the tag <c>conclave-agent</c>. Any Authorization
/// header is removed (a signed request is never also a token request). The key stays the caller's: dispose it after the handler.
/// </summary>
public sealed class AgentSigningHandler : DelegatingHandler
{
    private readonly HttpSigningKey _key;
    private readonly string _keyId;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lifetime;

    /// <param name="key">The credential's private key (Ed25519 or P-256).</param>
    /// <param name="keyId">The key id the credential was registered under.</param>
    /// <param name="lifetime">How long each signature is valid (default 30 s, at most 60 s).</param>
    /// <param name="time">The clock (tests inject one).</param>
    public AgentSigningHandler(HttpSigningKey key, string keyId, TimeSpan? lifetime = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentException.ThrowIfNullOrEmpty(keyId);
        _lifetime = lifetime ?? TimeSpan.FromSeconds(30);
        if (_lifetime <= TimeSpan.Zero || _lifetime > AgentRequestVerifier.MaxLifetime)
        {
            throw new ArgumentOutOfRangeException(nameof(lifetime), "a signature lives more than 0 and at most 60 seconds");
        }

        _key = key;
        _keyId = keyId;
        _time = time ?? TimeProvider.System;
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Uri target = request.RequestUri ?? throw new InvalidOperationException("the request has no URI");
        // Reading the content buffers it, so it is sent exactly as it was digested.
        byte[] body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        SignedRequestHeaders h = HttpMessageSigner.SignAgentRequest(request.Method.Method, target.AbsoluteUri, body, _key, _keyId, NewNonce(), _time.GetUtcNow(), _lifetime);
        request.Headers.Authorization = null;
        request.Headers.Remove("Content-Digest");
        request.Headers.Remove("Signature-Input");
        request.Headers.Remove("Signature");
        request.Headers.TryAddWithoutValidation("Content-Digest", h.ContentDigest);
        request.Headers.TryAddWithoutValidation("Signature-Input", h.SignatureInput);
        request.Headers.TryAddWithoutValidation("Signature", h.Signature);
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>128 random bits, base64url without padding (22 characters of [A-Za-z0-9_-]).</summary>
    private static string NewNonce() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
