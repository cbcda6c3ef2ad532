using System.Globalization;

namespace Conclave.Policy.HttpSignatures;

/// <summary>The headers an agent adds to a request.</summary>
public sealed record SignedRequestHeaders(string ContentDigest, string SignatureInput, string Signature);

/// <summary>RFC 9421 section 3.1 "Creating a Signature".</summary>
public static class HttpMessageSigner
{
    /// <summary>The components every agent request covers.</summary>
    public static IReadOnlyList<string> AgentComponents { get; } = ["@method", "@target-uri", "content-digest"];

    public const string DefaultLabel = "sig1";

    /// <summary>
    /// Signs covered components with parameters in the given order; returns the <c>Signature-Input</c> and
    /// <c>Signature</c> values under <paramref name="label"/>. Throws <see cref="PolicyFormatException"/> when a covered
    /// component is missing from the message.
    /// </summary>
    public static (string SignatureInput, string Signature) Sign(HttpMessageComponents message, IReadOnlyList<string> components, IReadOnlyList<KeyValuePair<string, SfItem>> parameters, HttpSigningKey key, string label = DefaultLabel)
    {
        ArgumentNullException.ThrowIfNull(key);
        string sigParams = StructuredFields.SerializeInnerList(components, parameters);
        string signatureBase = SignatureBase.Create(message, components, sigParams) ?? throw PolicyErrors.Invalid("components", "components the message has, each once");
        byte[] sig = key.Sign(signatureBase);
        return ($"{label}={sigParams}", $"{label}=:{Convert.ToBase64String(sig)}:");
    }

    /// <summary>
    /// Signs an agent request (issue 16 "Identities and authentication"): adds a sha-256 Content-Digest of the body,
    /// covers <c>"@method" "@target-uri" "content-digest"</c>, with <c>created</c>, <c>expires</c> (created + lifetime,
    /// at most 60 s), <c>nonce</c>, <c>keyid</c> and <c>tag</c>.
    /// </summary>
    public static SignedRequestHeaders SignAgentRequest(string method, string targetUri, ReadOnlySpan<byte> body, HttpSigningKey key, string keyId, string nonce, DateTimeOffset now, TimeSpan lifetime, string tag = AgentRequestVerifier.DefaultTag)
    {
        if (lifetime <= TimeSpan.Zero || lifetime > AgentRequestVerifier.MaxLifetime)
        {
            throw PolicyErrors.Invalid("lifetime", "more than 0 and at most 60 seconds");
        }

        string digest = ContentDigest.Create(body);
        var message = new HttpMessageComponents(method, targetUri).Add("content-digest", digest);
        long created = now.ToUnixTimeSeconds();
        var parameters = new List<KeyValuePair<string, SfItem>>
        {
            new("created", new SfItem(created)),
            new("expires", new SfItem(created + (long)lifetime.TotalSeconds)),
            new("nonce", new SfItem(new SfString(nonce))),
            new("keyid", new SfItem(new SfString(keyId))),
            new("tag", new SfItem(new SfString(tag))),
        };
        var (input, signature) = Sign(message, AgentComponents, parameters, key);
        return new SignedRequestHeaders(digest, input, signature);
    }

    internal static string Seconds(long s) => s.ToString(CultureInfo.InvariantCulture);
}
