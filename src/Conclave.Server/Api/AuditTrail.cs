using System.Security.Cryptography;
using Conclave.Storage.Keys;
using Microsoft.AspNetCore.Http;

namespace Conclave.Server.Api;

/// <summary>
/// What a request leaves for its audit entries in <see cref="HttpContext.Items"/>: the key it named (resolved once
/// by the audit middleware so the handler does not look it up again), the problem it answered with, and — for
/// JSON-RPC — the keys and outcomes of its calls. Handlers only add facts here; the middleware writes the entries.
/// </summary>
public static class AuditTrail
{
    private const int MaxResultLength = 256;
    private static readonly object KeyItem = new();
    private static readonly object ProblemItem = new();
    private static readonly object CallsItem = new();
    private static readonly object IntentItem = new();
    private static readonly object RequestAuditItem = new();

    /// <summary>The key the route named, if the audit middleware found it.</summary>
    public static KeyRecord? Key(HttpContext ctx) => ctx?.Items[KeyItem] as KeyRecord;

    internal static void SetKey(HttpContext ctx, KeyRecord key) => ctx.Items[KeyItem] = key;

    internal static void SetIntent(HttpContext ctx, Task intent) => ctx.Items[IntentItem] = intent;

    /// <summary>
    /// Waits until the request's intent entry is durable; throws the 503 audit-unavailable problem if it failed. A route
    /// marked <see cref="AuditOverlap"/> calls this after computing its result and before returning it.
    /// </summary>
    public static Task RequireIntentAsync(HttpContext ctx) =>
        ctx?.Items[RequestAuditItem] is RequestAudit held ? held.FlushAsync() // the intent and everything held with it
        : ctx?.Items[IntentItem] as Task ?? throw new InvalidOperationException("no audit intent for this request");

    internal static void SetRequestAudit(HttpContext ctx, RequestAudit held) => ctx.Items[RequestAuditItem] = held;

    /// <summary>Called by <see cref="ProblemTypes.WriteAsync"/>: the problem type answered.</summary>
    internal static void SetProblem(HttpContext ctx, string type) => ctx.Items[ProblemItem] = type;

    internal static string? Problem(HttpContext ctx) => ctx.Items[ProblemItem] as string;

    /// <summary>A JSON-RPC call's outcome: method, the key it used (if any) and "ok" or the error code.</summary>
    internal static void AddCall(HttpContext ctx, string method, string? keyId, string outcome)
    {
        if (ctx.Items[CallsItem] is not List<(string Method, string? KeyId, string Outcome)> calls)
        {
            calls = [];
            ctx.Items[CallsItem] = calls;
        }

        lock (calls)
        {
            calls.Add((method, keyId, outcome));
        }
    }

    /// <summary>
    /// The outcome entry's key id and result text (at most 256 characters, as the audit log requires):
    /// <c>completed STATUS response-sha256 HEX</c> for a success (the hash of the exact bytes sent, so the entry
    /// identifies the signature released), <c>failed STATUS TYPE</c> for a problem, <c>aborted</c> when the client
    /// went away first; JSON-RPC adds each call's method and outcome.
    /// </summary>
    internal static (string? KeyId, string Result) Outcome(HttpContext ctx, string? routeKeyId, byte[]? responseHash)
    {
        int status = ctx.Response.StatusCode;
        string? problem = Problem(ctx);
        string result;
        if (problem is not null)
        {
            result = $"failed {status} {problem[ProblemTypes.Base.Length..]}";
        }
        else if (ctx.RequestAborted.IsCancellationRequested && !ctx.Response.HasStarted)
        {
            result = "aborted";
        }
        else
        {
            result = status < 400
                ? $"completed {status} response-sha256 {(responseHash is null ? "-" : Convert.ToHexStringLower(responseHash))}"
                : $"failed {status}";
        }

        string? keyId = routeKeyId;
        if (ctx.Items[CallsItem] is List<(string Method, string? KeyId, string Outcome)> calls)
        {
            lock (calls)
            {
                string[] ids = [.. calls.Select(c => c.KeyId).OfType<string>().Distinct()];
                keyId ??= ids.Length == 1 ? ids[0] : null;
                result += "; rpc " + string.Join(", ", calls.Select(c => c.Method + " " + c.Outcome));
            }
        }

        return (keyId, result.Length <= MaxResultLength ? result : result[..(MaxResultLength - 1)] + "…");
    }
}

/// <summary>A pass-through response stream that hashes what the handler writes (SHA-256).</summary>
internal sealed class HashingResponseStream(Stream inner) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private bool _written;

    public byte[]? Finish()
    {
        lock (_hash)
        {
            return _written ? _hash.GetHashAndReset() : null;
        }
    }

    private void Add(ReadOnlySpan<byte> data)
    {
        lock (_hash)
        {
            _written = true;
            _hash.AppendData(data);
        }
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count)
    {
        Add(buffer.AsSpan(offset, count));
        inner.Write(buffer, offset, count);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Add(buffer);
        inner.Write(buffer);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Add(buffer.AsSpan(offset, count));
        return inner.WriteAsync(buffer, offset, count, cancellationToken);
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Add(buffer.Span);
        return inner.WriteAsync(buffer, cancellationToken);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}
