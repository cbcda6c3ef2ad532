using System.Buffers.Binary;
using Conclave.Crypto.Ed25519;
using Conclave.Node.Rpc;
using Google.Protobuf;

namespace Conclave.Node.Protocol;

/// <summary>
/// Signs and verifies protocol envelopes. The signed transcript is a length-prefixed encoding of every field
/// but the signature, under a fixed domain label, so no two different envelopes share a transcript
/// (ATTACKS.md "Coordinator tampering": every message is signed by its sender and bound to session id and round).
/// </summary>
public static class EnvelopeSigner
{
    private static ReadOnlySpan<byte> Domain => "conclave/envelope/v1"u8;

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

    /// <summary>Fills in the signature of an envelope with the sender's identity key.</summary>
    public static Envelope Sign(Envelope e, NodeIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(identity);
        e.Signature = ByteString.Empty;
        e.Signature = ByteString.CopyFrom(identity.Sign(Transcript(e)));
        return e;
    }

    /// <summary>Verifies an envelope's signature under the sender's identity public key.</summary>
    public static bool Verify(Envelope e, ReadOnlySpan<byte> senderIdentityPublicKey)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.SessionId.Length != SessionIdSizeInBytes || e.Signature.Length != 64)
        {
            return false;
        }

        return Ed25519Signature.Instance.Verify(senderIdentityPublicKey, Transcript(e), e.Signature.Span);
    }

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
