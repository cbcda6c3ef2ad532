using System.Globalization;
using System.Text.Json;
using Conclave.Crypto.Signing;
using Conclave.Storage.Internal;

namespace Conclave.Storage.Audit;

/// <summary>
/// The signed head of an audit log, exported to somewhere the database's writers cannot reach (a ticket, a chain,
/// another system). <c>conclave audit verify --anchor FILE</c> later proves the log still contains the entry it names:
/// a log truncated or rewritten at or before <see cref="Seq"/> no longer has that hash there.
/// The signature covers <c>"conclave/audit-head/v1" ‖ u64be seq ‖ hash ‖ i64be time_ms ‖ u64be interval ‖ u64be from</c>.
/// </summary>
public sealed record AuditAnchor(long Seq, byte[] Hash, DateTimeOffset Time, long CheckpointInterval, long CheckpointsFrom, string Scheme, byte[] PublicKey, byte[] Signature)
{
    /// <summary>True when the signature verifies under <see cref="PublicKey"/>.</summary>
    public bool VerifySignature()
    {
        if (!SignatureSchemes.TryGet(Scheme, out SoftwareSignatureScheme? scheme) || scheme is null || Hash.Length != AuditHashing.HashSize)
        {
            return false;
        }

        try
        {
            return scheme.Verify(PublicKey, AuditHashing.HeadSigningInput(scheme, Seq, Hash, Time.ToUnixTimeMilliseconds(), CheckpointInterval, CheckpointsFrom), Signature);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>The anchor as one JSON object (hex for bytes, ISO 8601 UTC with milliseconds for the time).</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("format", "conclave-audit-anchor/v1");
            w.WriteNumber("seq", Seq);
            w.WriteString("hash", Convert.ToHexStringLower(Hash));
            w.WriteString("time", Time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
            w.WriteNumber("checkpointInterval", CheckpointInterval);
            w.WriteNumber("checkpointsFrom", CheckpointsFrom);
            w.WriteString("scheme", Scheme);
            w.WriteString("publicKey", Convert.ToHexStringLower(PublicKey));
            w.WriteString("signature", Convert.ToHexStringLower(Signature));
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Parses <see cref="ToJson"/>'s output; anything else is <see cref="StorageErrorKind.InvalidArgument"/>.</summary>
    public static AuditAnchor Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using JsonDocument doc = JsonDocument.Parse(json);
            JsonElement r = doc.RootElement;
            if (r.GetProperty("format").GetString() != "conclave-audit-anchor/v1")
            {
                throw StorageErrors.Invalid("anchor", "not a conclave-audit-anchor/v1 document");
            }

            string time = r.GetProperty("time").GetString() ?? "";
            return new AuditAnchor(
                r.GetProperty("seq").GetInt64(),
                Convert.FromHexString(r.GetProperty("hash").GetString() ?? ""),
                DateTimeOffset.Parse(time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
                r.GetProperty("checkpointInterval").GetInt64(),
                r.GetProperty("checkpointsFrom").GetInt64(),
                r.GetProperty("scheme").GetString() ?? "",
                Convert.FromHexString(r.GetProperty("publicKey").GetString() ?? ""),
                Convert.FromHexString(r.GetProperty("signature").GetString() ?? ""));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw StorageErrors.Invalid("anchor", "not a valid anchor document (" + e.GetType().Name + ")");
        }
    }
}
