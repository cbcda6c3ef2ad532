using Conclave.Policy.HttpSignatures;
using Conclave.Policy.Principals;
using Conclave.Storage;
using Conclave.Storage.Principals;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Extensions;

namespace Conclave.Server.Api.Identity;

/// <summary>The outcome of authenticating a signed request: the caller, or a short reason (for the audit log) and one readable line (for the 401).</summary>
public sealed record AuthenticationOutcome(CallerIdentity? Caller, string Reason, string Detail);

/// <summary>
/// Authenticates requests signed with an RFC 9421 HTTP Message Signature under a registered credential
/// (issue 16 "Identities and authentication"; the checks are <see cref="AgentRequestVerifier"/>'s, section 3.2 of the
/// RFC): exactly <c>"@method" "@target-uri" "content-digest"</c> covered, the RFC 9530 Content-Digest matching the
/// body, <c>created</c>/<c>expires</c> at most 60 s apart and around now, the fixed tag, and the signature valid under
/// the credential's Ed25519 or P-256 key. Then: the credential not revoked and its lease not lapsed, its principal not
/// disabled, and the nonce not used before for this key id.
/// <para>
/// Replays across replicas: each replica remembers nonces in memory (<see cref="NonceReplayWindow"/>, the verifier's
/// check), and every accepted nonce is also written to the store's <c>request_nonces</c> table (unique per key id and
/// nonce, kept until the signature expires), so a replay sent to another replica sharing the PostgreSQL database is
/// refused there too. A nonce is consumed only by a request that passed every other check.
/// </para>
/// <para>
/// <c>@target-uri</c> is the URL as this server received it (scheme, Host header, path and query): a client must sign the
/// URL it sends to, and a proxy in front must keep the Host header and the scheme the client used.
/// </para>
/// </summary>
public sealed class AgentAuthenticator(IConclaveStore store, TimeProvider time)
{
    private readonly NonceReplayWindow _window = new(200_000);

    /// <summary>True when the request carries signature header fields (it is then authenticated here, never by token).</summary>
    public static bool IsSigned(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Headers.ContainsKey("Signature-Input") || request.Headers.ContainsKey("Signature");
    }

    public async Task<AuthenticationOutcome> AuthenticateAsync(HttpContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        HttpRequest request = ctx.Request;
        var message = new HttpMessageComponents(request.Method, request.GetEncodedUrl());
        foreach (string name in (string[])["signature-input", "signature", "content-digest"])
        {
            foreach (string? v in request.Headers[name])
            {
                if (v is not null)
                {
                    message.Add(name, v);
                }
            }
        }

        // The credential the signature names, read before verification (the verifier resolves keys synchronously).
        (string? keyId, string? nonce, long? expires) = Peek(message.Field("signature-input"));
        CredentialRecord? credential = null;
        PrincipalRecord? principal = null;
        if (keyId is not null && PrincipalCodec.IsValidId(keyId))
        {
            credential = await store.Principals.GetCredentialAsync(keyId, ctx.RequestAborted).ConfigureAwait(false);
            if (credential is not null)
            {
                principal = await store.Principals.GetAsync(credential.PrincipalId, ctx.RequestAborted).ConfigureAwait(false);
            }
        }

        HttpVerificationKey? key = null;
        if (credential is not null && principal is not null && HttpSignatureAlgorithms.TryParse(credential.Algorithm, out HttpSignatureAlgorithm alg))
        {
            key = new HttpVerificationKey(alg, credential.PublicKey);
        }

        byte[] body = await ReadBodyAsync(ctx).ConfigureAwait(false);
        DateTimeOffset now = time.GetUtcNow();
        var verifier = new AgentRequestVerifier(k => k == keyId ? key : null, _window);
        HttpSignatureResult result = verifier.Verify(message, body, now);
        if (!result.IsValid)
        {
            return Refused(ReasonOf(result.Error), result.Message);
        }

        // The signature is the credential holder's: from here the refusals say precisely why.
        if (credential!.Revoked)
        {
            return Refused("revoked", $"credential '{keyId}' is revoked");
        }

        if (now >= credential.LeaseExpiresAt)
        {
            return Refused("lapsed", $"the lease of credential '{keyId}' ended; an admin can renew it");
        }

        if (principal!.Disabled)
        {
            return Refused("disabled", $"principal '{principal.Id}' is disabled");
        }

        if (!await store.Principals.TryConsumeRequestNonceAsync(keyId!, nonce!, DateTimeOffset.FromUnixTimeSeconds(expires!.Value), ctx.RequestAborted).ConfigureAwait(false))
        {
            return Refused("replayed", "this nonce was already used (a replayed request)");
        }

        Principal p = PrincipalCodec.ToPolicy(principal);
        return new AuthenticationOutcome(new CallerIdentity(p, AuthMethod.HttpSignature, keyId), "ok", "verified");
    }

    private static AuthenticationOutcome Refused(string reason, string detail) => new(null, reason, detail);

    private static string ReasonOf(HttpSignatureError e) => e switch
    {
        HttpSignatureError.Replayed => "replayed",
        HttpSignatureError.Expired => "expired",
        HttpSignatureError.NotYetValid => "not-yet-valid",
        HttpSignatureError.UnknownKey => "unknown-credential",
        HttpSignatureError.DigestMismatch => "digest-mismatch",
        HttpSignatureError.BadSignature => "bad-signature",
        _ => "malformed-signature",
    };

    /// <summary>keyid, nonce and expires of the one signature, or nulls (the verifier then says what is wrong).</summary>
    private static (string? KeyId, string? Nonce, long? Expires) Peek(string? signatureInput)
    {
        if (signatureInput is null)
        {
            return (null, null, null);
        }

        try
        {
            IReadOnlyList<KeyValuePair<string, SfMember>> d = StructuredFields.ParseDictionary(signatureInput);
            if (d.Count != 1)
            {
                return (null, null, null);
            }

            SfItem? P(string name) => d[0].Value.Params.FirstOrDefault(x => x.Key == name).Value;
            return (P("keyid")?.String, P("nonce")?.String, P("expires")?.Integer);
        }
        catch (FormatException)
        {
            return (null, null, null);
        }
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext ctx)
    {
        ctx.Request.EnableBuffering();
        using var ms = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(ms, ctx.RequestAborted).ConfigureAwait(false);
        ctx.Request.Body.Position = 0;
        return ms.ToArray();
    }
}
