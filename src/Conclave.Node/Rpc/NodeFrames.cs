using System.Buffers.Binary;
using System.Text;
using Grpc.Core;

namespace Conclave.Node.Rpc;

/// <summary>
/// The coordinator–node frame protocol (docs/ARCHITECTURE.md "Node transport"): one long-lived mutual-TLS connection
/// per node on the node's gRPC port, carrying many protocol steps at once. The same <see cref="StepRequest"/> and
/// <see cref="StepReply"/> messages as the gRPC <c>Step</c> call, with the same signed envelopes, checks and statuses;
/// only the framing changes (no HTTP/2 stream, headers or per-call trailers for each step).
/// <para>
/// After the TLS handshake the client writes <see cref="Magic"/>; anything else on the port is HTTP/2 (gRPC). Then
/// frames in both directions: <c>u32 body length ‖ u32 call id ‖ u8 type ‖ body</c>, big-endian. Client to node:
/// <see cref="Step"/> (body: <c>u32 timeout ms ‖ StepRequest</c>) and <see cref="Cancel"/> (empty body). Node to
/// client: <see cref="Reply"/> (body: StepReply) and <see cref="Error"/> (body: <c>u8 status ‖ u8 has culprit ‖ u32
/// culprit ‖ UTF-8 detail</c>). Replies come in any order; the call id pairs them. A malformed frame ends the connection.
/// </para>
/// </summary>
public static class NodeFrames
{
    /// <summary>What the client writes first: HTTP/2's preface starts "PRI", so the two never mix.</summary>
    public static ReadOnlySpan<byte> Magic => "conclave-frames/1\n"u8;

    public const int HeaderSize = 9;

    /// <summary>The largest body either side accepts (the gRPC limit on the same port).</summary>
    public const int MaxBody = 16 * 1024 * 1024;

    /// <summary>How many steps a node runs at once on one connection; beyond that a step is refused ResourceExhausted.</summary>
    public const int MaxInFlight = 512;

    public const byte Step = 1;

    public const byte Cancel = 2;

    public const byte Reply = 1;

    public const byte Error = 2;

    public static void WriteHeader(Span<byte> destination, int bodyLength, uint callId, byte type)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, checked((uint)bodyLength));
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], callId);
        destination[8] = type;
    }

    /// <summary>Reads a header; false when the length is over <see cref="MaxBody"/>.</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> source, out int bodyLength, out uint callId, out byte type)
    {
        uint length = BinaryPrimitives.ReadUInt32BigEndian(source);
        callId = BinaryPrimitives.ReadUInt32BigEndian(source[4..]);
        type = source[8];
        bodyLength = length <= MaxBody ? (int)length : -1;
        return bodyLength >= 0;
    }

    /// <summary>A whole step frame: header, timeout, request.</summary>
    public static byte[] StepFrame(uint callId, StepRequest request, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(request);
        int size = request.CalculateSize();
        byte[] frame = new byte[HeaderSize + 4 + size];
        WriteHeader(frame, 4 + size, callId, Step);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(HeaderSize), (uint)Math.Clamp(timeout.TotalMilliseconds, 1, uint.MaxValue));
        Google.Protobuf.MessageExtensions.WriteTo(request, frame.AsSpan(HeaderSize + 4));
        return frame;
    }

    public static byte[] CancelFrame(uint callId)
    {
        byte[] frame = new byte[HeaderSize];
        WriteHeader(frame, 0, callId, Cancel);
        return frame;
    }

    public static byte[] ReplyFrame(uint callId, StepReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        int size = reply.CalculateSize();
        byte[] frame = new byte[HeaderSize + size];
        WriteHeader(frame, size, callId, Reply);
        Google.Protobuf.MessageExtensions.WriteTo(reply, frame.AsSpan(HeaderSize));
        return frame;
    }

    public static byte[] ErrorFrame(uint callId, StatusCode status, string detail, uint? culprit)
    {
        ArgumentNullException.ThrowIfNull(detail);
        int textLength = Encoding.UTF8.GetByteCount(detail);
        byte[] frame = new byte[HeaderSize + 6 + textLength];
        WriteHeader(frame, 6 + textLength, callId, Error);
        frame[HeaderSize] = (byte)status;
        frame[HeaderSize + 1] = culprit is null ? (byte)0 : (byte)1;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(HeaderSize + 2), culprit ?? 0);
        Encoding.UTF8.GetBytes(detail, frame.AsSpan(HeaderSize + 6));
        return frame;
    }

    /// <summary>Reads an error body; false when it is malformed.</summary>
    public static bool TryReadError(ReadOnlySpan<byte> body, out StatusCode status, out string detail, out uint? culprit)
    {
        status = StatusCode.Unknown;
        detail = "";
        culprit = null;
        if (body.Length < 6 || body[0] > (byte)StatusCode.Unauthenticated || body[1] > 1)
        {
            return false;
        }

        status = (StatusCode)body[0];
        culprit = body[1] == 1 ? BinaryPrimitives.ReadUInt32BigEndian(body[2..]) : null;
        try
        {
            detail = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body[6..]);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }

        return true;
    }
}
