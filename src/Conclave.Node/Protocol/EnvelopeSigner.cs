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
        var w = new TranscriptWriter(t);
        w.Bytes(Domain);
        w.Bytes(e.SessionId.Span);
        w.Bytes(kind);
        w.U32(e.Round);
        w.U32(e.Sender);
        w.U32((uint)e.Recipients.Count);
        foreach (uint r in e.Recipients)
        {
            w.U32(r);
        }

        w.Bytes(e.Payload.Span);
        w.I64(e.IssuedAtUnixMs);
        return t;
    }

    /// <summary>
    /// SHA-256 of <see cref="Transcript"/>, fed field by field (the payload is hashed where it lies, not copied): what
    /// a format-2 signature covers and what the replay guard remembers.
    /// </summary>
    public static byte[] Digest(Envelope e)
    {
        ArgumentNullException.ThrowIfNull(e);
        byte[] kind = System.Text.Encoding.UTF8.GetBytes(e.Kind);
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> number = stackalloc byte[8];
        static void Field(IncrementalHash h, Span<byte> number, ReadOnlySpan<byte> field)
        {
            BinaryPrimitives.WriteUInt32BigEndian(number, (uint)field.Length);
            h.AppendData(number[..4]);
            h.AppendData(field);
        }

        Field(h, number, Domain);
        Field(h, number, e.SessionId.Span);
        Field(h, number, kind);
        foreach (uint v in (ReadOnlySpan<uint>)[e.Round, e.Sender, (uint)e.Recipients.Count])
        {
            BinaryPrimitives.WriteUInt32BigEndian(number, v);
            h.AppendData(number[..4]);
        }

        foreach (uint r in e.Recipients)
        {
            BinaryPrimitives.WriteUInt32BigEndian(number, r);
            h.AppendData(number[..4]);
        }

        Field(h, number, e.Payload.Span);
        BinaryPrimitives.WriteInt64BigEndian(number, e.IssuedAtUnixMs);
        h.AppendData(number);
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

    private ref struct TranscriptWriter(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;
        private int _pos;

        public void Bytes(ReadOnlySpan<byte> b)
        {
            BinaryPrimitives.WriteUInt32BigEndian(_buffer[_pos..], (uint)b.Length);
            _pos += 4;
            b.CopyTo(_buffer[_pos..]);
            _pos += b.Length;
        }

        public void U32(uint v)
        {
            BinaryPrimitives.WriteUInt32BigEndian(_buffer[_pos..], v);
            _pos += 4;
        }

        public void I64(long v)
        {
            BinaryPrimitives.WriteInt64BigEndian(_buffer[_pos..], v);
            _pos += 8;
        }
    }
}
