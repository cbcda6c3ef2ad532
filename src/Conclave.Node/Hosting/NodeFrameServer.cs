using System.Buffers;
using System.IO.Pipelines;
using Conclave.Node.Rpc;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Conclave.Node.Hosting;

/// <summary>
/// The node's side of the frame protocol (<see cref="NodeFrames"/>): a Kestrel connection middleware placed after
/// the TLS handshake of the node's port, so a frame connection has passed exactly the checks a gRPC connection passes
/// (the node's certificate, a client certificate from the cluster CA naming the coordinator, no resumption). A
/// connection that starts with <see cref="NodeFrames.Magic"/> is served here; any other goes on to HTTP/2 and gRPC
/// untouched. Each step runs through <see cref="SignerNodeService.StepAsync"/>: the same envelope checks, replay
/// guard, handlers and signed replies as a gRPC step.
/// </summary>
internal sealed partial class NodeFrameServer(SignerNodeService steps, ILogger<NodeFrameServer> log)
{
    /// <summary>The connection middleware: frames, or on to <paramref name="next"/> with nothing consumed.</summary>
    public async Task HandleAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(next);
        PipeReader input = connection.Transport.Input;
        byte[] magic = NodeFrames.Magic.ToArray();
        while (true)
        {
            ReadResult r;
            try
            {
                r = await input.ReadAsync(connection.ConnectionClosed).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ConnectionResetException or IOException)
            {
                return; // closed before it said which protocol it speaks
            }

            ReadOnlySequence<byte> buffer = r.Buffer;
            int have = (int)Math.Min(buffer.Length, magic.Length);
            byte[] head = buffer.Slice(0, have).ToArray();
            if (!head.AsSpan().SequenceEqual(magic.AsSpan(0, have)) || (r.IsCompleted && have < magic.Length))
            {
                // Not ours (HTTP/2 begins "PRI"): hand the connection on with every byte still unread.
                input.AdvanceTo(buffer.Start);
                await next(connection).ConfigureAwait(false);
                return;
            }

            if (have == magic.Length)
            {
                input.AdvanceTo(buffer.GetPosition(magic.Length));
                break;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
        }

        await ServeAsync(connection).ConfigureAwait(false);
    }

    private async Task ServeAsync(ConnectionContext connection)
    {
        PipeReader input = connection.Transport.Input;
        var writer = new FrameWriter(connection.Transport.Output);
        var calls = new Dictionary<uint, CancellationTokenSource>();
        var running = new List<Task>();
        byte[] header = new byte[NodeFrames.HeaderSize];
        try
        {
            while (true)
            {
                ReadResult r = await input.ReadAsync(connection.ConnectionClosed).ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = r.Buffer;
                while (buffer.Length >= NodeFrames.HeaderSize)
                {
                    buffer.Slice(0, NodeFrames.HeaderSize).CopyTo(header);
                    if (!NodeFrames.TryReadHeader(header, out int bodyLength, out uint callId, out byte type))
                    {
                        LogMalformed(log, connection.ConnectionId, "a frame longer than the limit");
                        return;
                    }

                    if (buffer.Length < NodeFrames.HeaderSize + bodyLength)
                    {
                        break;
                    }

                    ReadOnlySequence<byte> body = buffer.Slice(NodeFrames.HeaderSize, bodyLength);
                    if (!Dispatch(connection, writer, calls, running, callId, type, body))
                    {
                        return;
                    }

                    buffer = buffer.Slice(NodeFrames.HeaderSize + bodyLength);
                }

                input.AdvanceTo(buffer.Start, buffer.End);
                if (r.IsCompleted || r.IsCanceled)
                {
                    return;
                }

                running.RemoveAll(t => t.IsCompleted);
            }
        }
        catch (OperationCanceledException) when (connection.ConnectionClosed.IsCancellationRequested)
        {
            // The coordinator closed the connection.
        }
        catch (Exception e) when (e is ConnectionResetException or IOException)
        {
            // The connection broke.
        }
        finally
        {
            lock (calls)
            {
                foreach (CancellationTokenSource c in calls.Values)
                {
                    c.Cancel();
                }
            }

            // Steps already running finish (their records are written); their replies have nowhere to go.
            await Task.WhenAll(running).ConfigureAwait(false);
            writer.Close();
        }
    }

    /// <summary>Starts a step or cancels one; false ends the connection (a frame the protocol does not allow).</summary>
    private bool Dispatch(ConnectionContext connection, FrameWriter writer, Dictionary<uint, CancellationTokenSource> calls, List<Task> running,
        uint callId, byte type, ReadOnlySequence<byte> body)
    {
        if (type == NodeFrames.Cancel)
        {
            lock (calls)
            {
                if (calls.TryGetValue(callId, out CancellationTokenSource? c))
                {
                    c.Cancel();
                }
            }

            return true;
        }

        if (type != NodeFrames.Step || body.Length < 4)
        {
            LogMalformed(log, connection.ConnectionId, $"a frame of type {type} with {body.Length} bytes");
            return false;
        }

        Span<byte> t = stackalloc byte[4];
        body.Slice(0, 4).CopyTo(t);
        uint timeoutMs = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(t);
        StepRequest request;
        try
        {
            request = StepRequest.Parser.ParseFrom(body.Slice(4));
        }
        catch (InvalidProtocolBufferException)
        {
            writer.Write(NodeFrames.ErrorFrame(callId, StatusCode.InvalidArgument, "the step request is not a valid message", null));
            return true;
        }

        CancellationTokenSource cts;
        lock (calls)
        {
            if (calls.ContainsKey(callId))
            {
                LogMalformed(log, connection.ConnectionId, $"call id {callId} reused while in flight");
                return false;
            }

            if (calls.Count >= NodeFrames.MaxInFlight)
            {
                writer.Write(NodeFrames.ErrorFrame(callId, StatusCode.ResourceExhausted, $"more than {NodeFrames.MaxInFlight} steps in flight on one connection", null));
                return true;
            }

            cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(Math.Max(1, timeoutMs)));
            calls.Add(callId, cts);
        }

        running.Add(Task.Run(() => RunAsync(writer, calls, callId, request, cts)));
        return true;
    }

    private async Task RunAsync(FrameWriter writer, Dictionary<uint, CancellationTokenSource> calls, uint callId, StepRequest request, CancellationTokenSource cts)
    {
        byte[] frame;
        try
        {
            StepReply reply = await steps.StepAsync(request, cts.Token).ConfigureAwait(false);
            frame = NodeFrames.ReplyFrame(callId, reply);
        }
        catch (RpcException e)
        {
            uint? culprit = e.Trailers.GetValue("conclave-culprit") is { } c && uint.TryParse(c, System.Globalization.CultureInfo.InvariantCulture, out uint v) ? v : null;
            frame = NodeFrames.ErrorFrame(callId, e.StatusCode, e.Status.Detail, culprit);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            frame = NodeFrames.ErrorFrame(callId, StatusCode.Cancelled, "the step was cancelled or its deadline passed", null);
        }
#pragma warning disable CA1031 // a failing step must not end the connection: it is answered like gRPC answers an exception (no detail)
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogStepFailed(log, e.GetType().Name);
            frame = NodeFrames.ErrorFrame(callId, StatusCode.Unknown, "Exception was thrown by handler.", null);
        }
        finally
        {
            lock (calls)
            {
                calls.Remove(callId);
            }

            cts.Dispose();
        }

        writer.Write(frame);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "frame connection {ConnectionId} closed: {What}")]
    private static partial void LogMalformed(ILogger logger, string connectionId, string what);

    [LoggerMessage(Level = LogLevel.Error, Message = "a framed step failed with {Exception}")]
    private static partial void LogStepFailed(ILogger logger, string exception);

    /// <summary>Writes whole frames one at a time to the connection; a closed connection drops them.</summary>
    private sealed class FrameWriter(PipeWriter output)
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private volatile bool _closed;

        public void Write(byte[] frame) => _ = WriteAsync(frame);

        private async Task WriteAsync(byte[] frame)
        {
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                if (_closed)
                {
                    return;
                }

                FlushResult f = await output.WriteAsync(frame).ConfigureAwait(false);
                if (f.IsCompleted)
                {
                    _closed = true;
                }
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or ConnectionResetException or OperationCanceledException)
            {
                _closed = true;
            }
            finally
            {
                _gate.Release();
            }
        }

        /// <summary>Writes nothing more (a write in progress finishes or fails on its own).</summary>
        public void Close() => _closed = true;
    }
}
