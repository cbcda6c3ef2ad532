using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conclave.Server.Rotation;

/// <summary>
/// The public transcript of one rotation run (key generation, refresh, reshare or repair; docs/ROTATION.md "Verifying a
/// rotation"): what the run was (id, kind, key, scheme, threshold, dealers, receivers, versions), the public key
/// package before and after (hex), every dealer's round-one broadcast (its Feldman commitments and, for key generation
/// and reshare, its proof of knowledge) and every receiver's confirmation (which carries the public key package it
/// computed), each as the signed envelope the node sent (hex of the protobuf encoding, signed with the node's Ed25519
/// identity key). For a repair, the dealers are the helpers, the receiver the repaired node, old and new package the
/// key's (unchanged) package, the broadcasts the helpers' signed contributions and the confirmation the repaired node's
/// (Node.Threshold.Sharing.RepairEvidence). Public data only: no share, no nonce, no sealed message.
/// An ecdsa-dkls23 run (docs/DKLS23.md "Rotation transcripts") is the FROST DKG on secp256k1 followed by the DKLs23
/// pairwise setup: its old and new packages are DKLs23 public keys (<c>DklsPublicKey</c> encoding: verifying shares,
/// group key, chain code, DKG session id, epoch), its broadcasts and confirmations the DKG's, and
/// <see cref="SetupReports"/> holds every receiver's signed report (<c>dkls.setup.done</c>) of the key it stored pending
/// at the end of the pairwise setup. The setup's own messages are sealed point to point and are not part of it.
/// </summary>
public sealed record RotationTranscript(
    int Format,
    string RunId,
    string Kind,
    string KeyId,
    string Scheme,
    int Threshold,
    IReadOnlyList<uint> Dealers,
    IReadOnlyList<uint> Receivers,
    int FromVersion,
    int ToVersion,
    string? OldPublicKeyPackage,
    string NewPublicKeyPackage,
    IReadOnlyList<string> Broadcasts,
    IReadOnlyList<string> Confirmations,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? SetupReports = null)
{
    public const int CurrentFormat = 1;

    public byte[] ToJsonBytes() => JsonSerializer.SerializeToUtf8Bytes(this, TranscriptJsonContext.Default.RotationTranscript);

    /// <summary>Parses a transcript; malformed JSON is a <see cref="FormatException"/> that says where.</summary>
    public static RotationTranscript FromJson(ReadOnlySpan<byte> json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, TranscriptJsonContext.Default.RotationTranscript)
                ?? throw new FormatException("the transcript is empty (null)");
        }
        catch (JsonException e)
        {
            throw new FormatException($"the transcript is not valid transcript JSON{(e.Path is { } p ? $" (at {p})" : "")}", e);
        }
    }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    RespectRequiredConstructorParameters = true, RespectNullableAnnotations = true)]
[JsonSerializable(typeof(RotationTranscript))]
internal sealed partial class TranscriptJsonContext : JsonSerializerContext;
