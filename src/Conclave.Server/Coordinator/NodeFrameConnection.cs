using System.Collections.Concurrent;
using System.Net.Security;
using System.Net.Sockets;
using Conclave.Node.Config;
using Conclave.Node.Rpc;
using Grpc.Core;

namespace Conclave.Server.Coordinator;

/// <summary>
/// One mutual-TLS connection from the coordinator to a node speaking the frame protocol (<see cref="NodeFrames"/>):
/// many steps in flight at once, each paired with its reply by call id. The TLS options are the gRPC channel's (the
/// client certificate chosen at each handshake, the node's certificate checked against the cluster CA, no resumption).
/// A connection that fails fails every call in flight on it (Unavailable, as a broken HTTP/2 connection does), and is
/// not used again.
/// </summary>
internal sealed class NodeFrameConnection : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly SslStream _ssl;
    private readonly SemaphoreSlim _write = new(1, 1);
    private readonly ConcurrentDictionary<uint, TaskCompletionSource<(byte Type, byte[] Body)>> _pending = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly Task _reader;
    private uint _nextCallId;
    private long _lastReceivedTicks;
    private int _failed;
    private int _retired;

    private NodeFrameConnection(TcpClient tcp, SslStream ssl, TimeProvider clock)
    {
        _tcp = tcp;
        _ssl = ssl;
        Clock = clock;
        OpenedAt = clock.GetTimestamp();
        _reader = Task.Run(ReadLoopAsync);
    }

    private TimeProvider Clock { get; }

    /// <summary>When the connection was opened (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public long OpenedAt { get; }

    /// <summary>True once the connection failed or was retired: new calls must use another.</summary>
    public bool Failed => Volatile.Read(ref _failed) != 0 || Volatile.Read(ref _retired) != 0;

    /// <summary>Opens a connection: TCP, the TLS handshake with <paramref name="tls"/>, then the frame protocol's magic.</summary>
    public static async Task<NodeFrameConnection> OpenAsync(ListenEndpoint endpoint, SslClientAuthenticationOptions tls, TimeSpan connectTimeout, TimeProvider clock, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tls);
        var tcp = new TcpClient { NoDelay = true };
        // TCP keepalive on an idle connection (30 s, then every 10 s, 3 probes), as the gRPC channel pings: a peer gone
        // without a reset (a host down, a dropped NAT entry) fails the connection instead of the next step's deadline.
        tcp.Client.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        tcp.Client.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 30);
        tcp.Client.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 10);
        tcp.Client.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
        SslStream? ssl = null;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(connectTimeout);
            await tcp.ConnectAsync(endpoint.Host, endpoint.Port, timeout.Token).ConfigureAwait(false);
            ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
            await ssl.AuthenticateAsClientAsync(tls, timeout.Token).ConfigureAwait(false);
            await ssl.WriteAsync(NodeFrames.Magic.ToArray(), timeout.Token).ConfigureAwait(false);
            return new NodeFrameConnection(tcp, ssl, clock);
        }
        catch
        {
            if (ssl is not null)
            {
                await ssl.DisposeAsync().ConfigureAwait(false);
            }

            tcp.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends one step and waits for its reply. Throws <see cref="NodeFrameCallException"/> with the node's status (an
    /// error frame), DeadlineExceeded after <paramref name="timeout"/> (the node is told to cancel the step), or
    /// Unavailable when the connection fails; <see cref="OperationCanceledException"/> when the caller cancels.
    /// </summary>
    public async Task<StepReply> StepAsync(StepRequest request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        uint callId = Interlocked.Increment(ref _nextCallId);
        var tcs = new TaskCompletionSource<(byte Type, byte[] Body)>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[callId] = tcs;
        if (Volatile.Read(ref _failed) != 0)
        {
            // Closed before this step was written (a retired connection that finished its last step, or a failure):
            // nothing reached the node, so the caller may send the step on a fresh connection.
            _pending.TryRemove(callId, out _);
            throw new NodeFrameCallException(StatusCode.Unavailable, "the connection to the node was closed", notSent: true);
        }

        long sentAt = Clock.GetTimestamp();
        try
        {
            await SendAsync(NodeFrames.StepFrame(callId, request, timeout)).ConfigureAwait(false);
            (byte type, byte[] body) = await tcs.Task.WaitAsync(timeout, Clock, cancellationToken).ConfigureAwait(false);
            if (type == NodeFrames.Reply)
            {
                return StepReply.Parser.ParseFrom(body);
            }

            return NodeFrames.TryReadError(body, out StatusCode status, out string detail, out uint? culprit)
                ? throw new NodeFrameCallException(status, detail, culprit)
                : throw Fail(new NodeFrameCallException(StatusCode.DataLoss, "the node sent a malformed error frame"));
        }
        catch (TimeoutException)
        {
            _ = TryCancelAsync(callId);
            // Nothing at all heard on this connection since the call was sent: the peer may be gone without a reset
            // (a partition); the next call opens a fresh connection instead of waiting on this one.
            if (Interlocked.Read(ref _lastReceivedTicks) < sentAt)
            {
                Retire();
            }

            throw new NodeFrameCallException(StatusCode.DeadlineExceeded, "deadline exceeded");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _ = TryCancelAsync(callId);
            throw;
        }
        catch (Google.Protobuf.InvalidProtocolBufferException e)
        {
            throw Fail(new NodeFrameCallException(StatusCode.DataLoss, "the node sent a malformed reply: " + e.Message));
        }
        finally
        {
            _pending.TryRemove(callId, out _);
            if (Volatile.Read(ref _retired) != 0 && _pending.IsEmpty)
            {
                _ = DisposeAsync().AsTask();
            }
        }
    }

    /// <summary>No new calls are handed this connection; it closes once the calls in flight have their answers.</summary>
    public void Retire()
    {
        Interlocked.Exchange(ref _retired, 1);
        if (_pending.IsEmpty)
        {
            _ = DisposeAsync().AsTask();
        }
    }

    private async Task SendAsync(byte[] frame)
    {
        await _write.WaitAsync(_closing.Token).ConfigureAwait(false);
        try
        {
            await _ssl.WriteAsync(frame, _closing.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or SocketException)
        {
            throw Fail(new NodeFrameCallException(StatusCode.Unavailable, "the connection to the node failed: " + e.Message));
        }
        finally
        {
            _write.Release();
        }
    }

    private async Task TryCancelAsync(uint callId)
    {
        try
        {
            await SendAsync(NodeFrames.CancelFrame(callId)).ConfigureAwait(false);
        }
        catch (NodeFrameCallException)
        {
            // the connection is gone: so is the step's reason to run
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ReadLoopAsync()
    {
        byte[] header = new byte[NodeFrames.HeaderSize];
        try
        {
            while (true)
            {
                await _ssl.ReadExactlyAsync(header, _closing.Token).ConfigureAwait(false);
                if (!NodeFrames.TryReadHeader(header, out int length, out uint callId, out byte type) || type is not (NodeFrames.Reply or NodeFrames.Error))
                {
                    Fail(new NodeFrameCallException(StatusCode.DataLoss, "the node sent a malformed frame"));
                    return;
                }

                byte[] body = length == 0 ? [] : new byte[length];
                await _ssl.ReadExactlyAsync(body, _closing.Token).ConfigureAwait(false);
                Interlocked.Exchange(ref _lastReceivedTicks, Clock.GetTimestamp());
                if (_pending.TryGetValue(callId, out TaskCompletionSource<(byte, byte[])>? tcs))
                {
                    tcs.TrySetResult((type, body));
                }

                // A reply to a call that gave up (its deadline or its caller) is dropped.
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or SocketException or EndOfStreamException)
        {
            Fail(new NodeFrameCallException(StatusCode.Unavailable, "the connection to the node closed"));
        }
    }

    /// <summary>Marks the connection failed, fails every call waiting on it with <paramref name="reason"/>, closes it.</summary>
    private NodeFrameCallException Fail(NodeFrameCallException reason)
    {
        if (Interlocked.Exchange(ref _failed, 1) == 0)
        {
            foreach (TaskCompletionSource<(byte, byte[])> tcs in _pending.Values)
            {
                tcs.TrySetException(reason);
            }

            _ = DisposeAsync().AsTask();
        }

        return reason;
    }

    public async ValueTask DisposeAsync()
    {
        Interlocked.Exchange(ref _failed, 1);
        if (_closing.IsCancellationRequested)
        {
            return;
        }

        try
        {
            await _closing.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            return;
        }

        foreach (TaskCompletionSource<(byte, byte[])> tcs in _pending.Values)
        {
            tcs.TrySetException(new NodeFrameCallException(StatusCode.Unavailable, "the connection to the node was closed"));
        }

        await _ssl.DisposeAsync().ConfigureAwait(false);
        _tcp.Dispose();
        await _reader.ConfigureAwait(false);
    }
}

/// <summary>A framed step failed with a gRPC status (the node's, or the transport's).</summary>
internal sealed class NodeFrameCallException : Exception
{
    public NodeFrameCallException() { }

    public NodeFrameCallException(string message) : base(message) { }

    public NodeFrameCallException(string message, Exception innerException) : base(message, innerException) { }

    public NodeFrameCallException(StatusCode status, string detail, uint? culprit = null, bool notSent = false) : base(detail)
    {
        Status = status;
        Culprit = culprit;
        NotSent = notSent;
    }

    /// <summary>The step was never written to the connection: sending it on another one cannot run it twice.</summary>
    public bool NotSent { get; }

    public StatusCode Status { get; }

    public uint? Culprit { get; }
}
