using System.Buffers.Binary;
using System.Security.Cryptography;
using Conclave.Crypto.Ed25519;
using Conclave.Node.Rpc;
using Google.Protobuf;

namespace Conclave.Node.Protocol;

/// <summary>
/// Signs and verifies protocol envelopes. The transcript is a length-prefixed encoding of every field but the signature,
/// under a fixed domain label, so no two different envelopes share a transcript (every message is signed by its sender
/// and bound to session id and round, so a coordinator that relays it cannot alter it). Envelopes are signed (format 2)
/// with Ed25519 over a second domain label and the SHA-256 of the transcript (<see cref="Digest"/>), which is computed
/// once per envelope and also keys the replay guard: Ed25519 hashes what it signs twice with SHA-512 (once to verify),
/// which for a 50 kB DKLs23 round-two message cost 0.20 ms to sign and 0.14 ms to verify against 0.03 ms for one SHA-256
/// pass (docs/ARCHITECTURE.md "Envelope signatures").
/// Format 1 signed the transcript itself; <see cref="VerifyRecorded"/> still accepts it for what was recorded before
/// (rotation transcripts, equivocation evidence), never a live message. The two signed messages cannot be confused: a
/// format-2 message starts with its ASCII label, a transcript with the big-endian length of its own.
/// </summary>
public static class EnvelopeSigner
{
    private static ReadOnlySpan<byte> Domain => "conclave/envelope/v1"u8;

    private static ReadOnlySpan<byte> DigestDomain => "conclave/envelope/v2/sha256:"u8;

    /// <summary>The size of <see cref="Digest"/>.</summary>
    public const int DigestSizeInBytes = 32;

    public const int SessionIdSizeInBytes = 32;

    /// <summary>The canonical transcript of an envelope's fields 1–7.</summary>
    public static byte[] Transcript(Envelope e)
    {
        ArgumentNullException.ThrowIfNull(e);
        byte[] kind = System.Text.Encoding.UTF8.GetBytes(e.Kind);
        int size = 4 + Domain.Length + 4 + e.SessionId.Length + 4 + kind.Length + 4 + 4 + 4 + (4 * e.Recipients.Count) + 4 + e.Payload.Length + 8;
        byte[] t = new byte[size];
        var buffer = new BufferSink(t);
        Encode(e, kind, ref buffer);
        return t;
    }

    /// <summary>
    /// SHA-256 of <see cref="Transcript"/>, fed the same encoding field by field (the payload is hashed where it lies,
    /// not copied): what a format-2 signature covers and what the replay guard remembers.
    /// </summary>
    public static byte[] Digest(Envelope e)
    {
        ArgumentNullException.ThrowIfNull(e);
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var hash = new HashSink(h);
        Encode(e, System.Text.Encoding.UTF8.GetBytes(e.Kind), ref hash);
        return h.GetHashAndReset();
    }

    /// <summary>Fills in the signature of an envelope with the sender's identity key (format 2: over <see cref="Digest"/>).</summary>
    public static Envelope Sign(Envelope e, NodeIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(identity);
        e.Signature = ByteString.Empty;
        e.Signature = ByteString.CopyFrom(identity.Sign(SignedMessage(Digest(e))));
        return e;
    }

    /// <summary>Verifies a live envelope's signature (format 2) under the sender's identity public key.</summary>
    public static bool Verify(Envelope e, ReadOnlySpan<byte> senderIdentityPublicKey) => Verify(e, Digest(e), senderIdentityPublicKey);

    /// <summary>As <see cref="Verify(Envelope, ReadOnlySpan{byte})"/>, given the envelope's <see cref="Digest"/> (computed once for several keys and the replay guard).</summary>
    public static bool Verify(Envelope e, ReadOnlySpan<byte> digest, ReadOnlySpan<byte> senderIdentityPublicKey)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.SessionId.Length != SessionIdSizeInBytes || e.Signature.Length != 64 || digest.Length != DigestSizeInBytes)
        {
            return false;
        }

        return Ed25519Signature.Instance.Verify(senderIdentityPublicKey, SignedMessage(digest), e.Signature.Span);
    }

    /// <summary>Whether <paramref name="e"/> is signed (format 2) by one of <paramref name="keys"/>, given its <see cref="Digest"/>.</summary>
    public static bool VerifyAny(Envelope e, ReadOnlySpan<byte> digest, IEnumerable<byte[]> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        foreach (byte[] key in keys)
        {
            if (Verify(e, digest, key))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Verifies a recorded envelope (a rotation transcript, equivocation evidence): format 2, or format 1 (the transcript
    /// itself signed) for envelopes recorded before format 2. Live messages are verified with <see cref="Verify(Envelope, ReadOnlySpan{byte})"/> only.
    /// </summary>
    public static bool VerifyRecorded(Envelope e, ReadOnlySpan<byte> senderIdentityPublicKey)
    {
        ArgumentNullException.ThrowIfNull(e);
        return Verify(e, senderIdentityPublicKey)
            || (e.SessionId.Length == SessionIdSizeInBytes && e.Signature.Length == 64 && Ed25519Signature.Instance.Verify(senderIdentityPublicKey, Transcript(e), e.Signature.Span));
    }

    /// <summary>Testing only: signs in format 1 (the transcript itself), as envelopes were signed before format 2.</summary>
    internal static Envelope SignFormatOne(Envelope e, NodeIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(identity);
        e.Signature = ByteString.Empty;
        e.Signature = ByteString.CopyFrom(identity.Sign(Transcript(e)));
        return e;
    }

    private static byte[] SignedMessage(ReadOnlySpan<byte> digest) => [.. DigestDomain, .. digest];

    /// <summary>The transcript's encoding, once for both of its uses: each field as <c>u32 length ‖ bytes</c> or a big-endian number.</summary>
    private static void Encode<TSink>(Envelope e, ReadOnlySpan<byte> kind, ref TSink sink)
        where TSink : ITranscriptSink, allows ref struct
    {
        Span<byte> number = stackalloc byte[8];
        Field(ref sink, number, Domain);
        Field(ref sink, number, e.SessionId.Span);
        Field(ref sink, number, kind);
        U32(ref sink, number, e.Round);
        U32(ref sink, number, e.Sender);
        U32(ref sink, number, (uint)e.Recipients.Count);
        foreach (uint r in e.Recipients)
        {
            U32(ref sink, number, r);
        }

        Field(ref sink, number, e.Payload.Span);
        BinaryPrimitives.WriteInt64BigEndian(number, e.IssuedAtUnixMs);
        sink.Append(number);

        static void Field(ref TSink sink, scoped Span<byte> number, scoped ReadOnlySpan<byte> field)
        {
            U32(ref sink, number, (uint)field.Length);
            sink.Append(field);
        }

        static void U32(ref TSink sink, scoped Span<byte> number, uint v)
        {
            BinaryPrimitives.WriteUInt32BigEndian(number, v);
            sink.Append(number[..4]);
        }
    }

    private interface ITranscriptSink
    {
        void Append(scoped ReadOnlySpan<byte> bytes);
    }

    /// <summary>Writes the transcript into a buffer of its exact size.</summary>
    private ref struct BufferSink(Span<byte> buffer) : ITranscriptSink
    {
        private readonly Span<byte> _buffer = buffer;
        private int _pos;

        public void Append(scoped ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_buffer[_pos..]);
            _pos += bytes.Length;
        }
    }

    /// <summary>Hashes the transcript as it is encoded.</summary>
    private readonly struct HashSink(IncrementalHash hash) : ITranscriptSink
    {
        public void Append(scoped ReadOnlySpan<byte> bytes) => hash.AppendData(bytes);
    }
}
