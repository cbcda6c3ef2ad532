namespace Conclave.Policy.HttpSignatures;

public enum HttpSignatureError
{
    None,
    MissingSignature,
    Malformed,
    WrongComponents,
    MissingParameter,
    UnexpectedParameter,
    WrongTag,
    NotYetValid,
    Expired,
    LifetimeTooLong,
    UnknownKey,
    AlgorithmMismatch,
    DigestMismatch,
    BadSignature,
    Replayed,
    ReplayWindowFull,
}

/// <summary>A verification outcome: who signed (the key id) or the typed reason it was refused, with one readable line.</summary>
public sealed record HttpSignatureResult(HttpSignatureError Error, string? KeyId, string Message)
{
    public bool IsValid => Error == HttpSignatureError.None;
}

/// <summary>
/// Verifies agent requests (RFC 9421 section 3.2 "Verifying a Signature", with Conclave's requirements from issue 16):
/// exactly one signature; covered components exactly <c>"@method" "@target-uri" "content-digest"</c>; parameters
/// <c>created</c>, <c>expires</c> (after created, at most 60 s later), <c>nonce</c>, <c>keyid</c> and the fixed
/// <c>tag</c>, and optionally <c>alg</c> matching the key; the time inside [created - skew, expires); the RFC 9530
/// Content-Digest matching the body; the signature valid under the key the key id names; and the nonce not seen before
/// inside the window. Nothing is remembered for a request that fails any check.
/// </summary>
public sealed class AgentRequestVerifier(Func<string, HttpVerificationKey?> resolveKey, NonceReplayWindow replayWindow, string tag = AgentRequestVerifier.DefaultTag)
{
    public const string DefaultTag = "conclave-agent";

    public static TimeSpan MaxLifetime { get; } = TimeSpan.FromSeconds(60);

    public static TimeSpan ClockSkew { get; } = TimeSpan.FromSeconds(5);

    private static readonly string[] s_allowedParams = ["created", "expires", "nonce", "keyid", "tag", "alg"];

    private static HttpSignatureResult Fail(HttpSignatureError e, string message, string? keyId = null) => new(e, keyId, message);

    /// <summary>
    /// <paramref name="message"/> carries the method, the target URI as the server received it, and the
    /// <c>signature-input</c>, <c>signature</c> and <c>content-digest</c> header fields.
    /// </summary>
    public HttpSignatureResult Verify(HttpMessageComponents message, ReadOnlySpan<byte> body, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(message);
        string? inputHeader = message.Field("signature-input");
        string? sigHeader = message.Field("signature");
        if (inputHeader is null || sigHeader is null)
        {
            return Fail(HttpSignatureError.MissingSignature, "the request has no Signature-Input and Signature header fields");
        }

        IReadOnlyList<KeyValuePair<string, SfMember>> inputs, sigs;
        try
        {
            inputs = StructuredFields.ParseDictionary(inputHeader);
            sigs = StructuredFields.ParseDictionary(sigHeader);
        }
        catch (FormatException)
        {
            return Fail(HttpSignatureError.Malformed, "Signature-Input or Signature is not a valid structured field dictionary (RFC 8941)");
        }

        if (inputs.Count != 1 || sigs.Count != 1 || inputs[0].Key != sigs[0].Key)
        {
            return Fail(HttpSignatureError.Malformed, "exactly one signature is expected, with the same label in Signature-Input and Signature");
        }

        var input = inputs[0].Value;
        if (input.InnerList is not { } list || sigs[0].Value.Item?.Bytes is not { } signature)
        {
            return Fail(HttpSignatureError.Malformed, "Signature-Input must be an inner list and Signature a byte sequence");
        }

        var components = new List<string>();
        foreach (var (item, itemParams) in list)
        {
            if (item.String is not { } name || itemParams.Count > 0)
            {
                return Fail(HttpSignatureError.WrongComponents, "covered components must be plain strings");
            }

            components.Add(name);
        }

        if (components.Count != 3 || !HttpMessageSigner.AgentComponents.All(components.Contains))
        {
            return Fail(HttpSignatureError.WrongComponents, "the signature must cover exactly \"@method\" \"@target-uri\" \"content-digest\"");
        }

        var ps = input.Params;
        foreach (var (k, _) in ps)
        {
            if (Array.IndexOf(s_allowedParams, k) < 0)
            {
                return Fail(HttpSignatureError.UnexpectedParameter, $"signature parameter {k} is not accepted");
            }
        }

        SfItem? P(string k) => ps.FirstOrDefault(x => x.Key == k).Value;
        if (P("created")?.Integer is not { } created || P("expires")?.Integer is not { } expires || P("nonce")?.String is not { } nonce
            || P("keyid")?.String is not { } keyId || P("tag")?.String is not { } givenTag)
        {
            return Fail(HttpSignatureError.MissingParameter, "the signature needs created, expires (integers), nonce, keyid and tag (strings)");
        }

        if (givenTag != tag)
        {
            return Fail(HttpSignatureError.WrongTag, $"the signature tag must be \"{tag}\"", keyId);
        }

        if (expires <= created || expires - created > (long)MaxLifetime.TotalSeconds)
        {
            return Fail(HttpSignatureError.LifetimeTooLong, "expires must be after created and at most 60 seconds later", keyId);
        }

        long nowS = now.ToUnixTimeSeconds();
        if (nowS < created - (long)ClockSkew.TotalSeconds)
        {
            return Fail(HttpSignatureError.NotYetValid, "the signature was created in the future (check the agent's clock)", keyId);
        }

        if (nowS >= expires)
        {
            return Fail(HttpSignatureError.Expired, "the signature has expired", keyId);
        }

        if (nonce.Length is < 16 or > 128 || !nonce.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            return Fail(HttpSignatureError.Malformed, "nonce must be 16 to 128 characters from [A-Za-z0-9_-]", keyId);
        }

        if (resolveKey(keyId) is not { } key)
        {
            return Fail(HttpSignatureError.UnknownKey, "no active credential has this key id (unknown, revoked or lapsed)", keyId);
        }

        if (P("alg") is { } alg && (alg.String is not { } algName || !HttpSignatureAlgorithms.TryParse(algName, out var a) || a != key.Algorithm))
        {
            return Fail(HttpSignatureError.AlgorithmMismatch, "alg does not match the credential's algorithm", keyId);
        }

        if (!ContentDigest.Verify(message.Field("content-digest"), body))
        {
            return Fail(HttpSignatureError.DigestMismatch, "Content-Digest is missing, lacks sha-256, or does not match the body", keyId);
        }

        string sigParams = StructuredFields.SerializeInnerList(components, ps);
        string? signatureBase = SignatureBase.Create(message, components, sigParams);
        if (signatureBase is null || !key.Verify(signatureBase, signature))
        {
            return Fail(HttpSignatureError.BadSignature, "the signature does not verify under the credential's key", keyId);
        }

        return replayWindow.TryRemember(keyId, nonce, DateTimeOffset.FromUnixTimeSeconds(expires), now) switch
        {
            NonceOutcome.Fresh => new HttpSignatureResult(HttpSignatureError.None, keyId, "verified"),
            NonceOutcome.Replayed => Fail(HttpSignatureError.Replayed, "this nonce was already used (a replayed request)", keyId),
            _ => Fail(HttpSignatureError.ReplayWindowFull, "too many recent requests to remember their nonces; retry shortly", keyId),
        };
    }
}
