using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Conclave.Server.Hosting;

namespace Conclave.Cli.Bench;

/// <summary>
/// A TCP proxy on loopback that delays every byte by a fixed one-way latency in each direction, as between regions
/// (issue 18 "far apart"). It models latency, not bandwidth or loss: each chunk read is written to the other side
/// once its delay has passed, in order. It forwards the TLS stream untouched, so the coordinator and the node still
/// authenticate each other end to end.
/// </summary>
internal sealed class DelayProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly TimeSpan _oneWay;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];
    private readonly Task _accepting;

    public DelayProxy(IPEndPoint target, TimeSpan oneWay)
    {
        _target = target;
        _oneWay = oneWay;
        _listener = new TcpListener(IPAddress.Loopback, LoopbackPorts.Take());
        _listener.Start();
        _accepting = Task.Run(AcceptAsync);
    }

    /// <summary>Where to connect instead of the target ("127.0.0.1:port").</summary>
    public string Address => "127.0.0.1:" + ((IPEndPoint)_listener.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
                client.NoDelay = true;
                var upstream = new TcpClient { NoDelay = true };
                try
                {
                    await upstream.ConnectAsync(_target, _stop.Token).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    client.Dispose();
                    upstream.Dispose();
                    continue;
                }

                lock (_tasks)
                {
                    _tasks.Add(PipeAsync(client, upstream));
                    _tasks.Add(PipeAsync(upstream, client));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Reads from <paramref name="from"/> and writes each chunk to <paramref name="to"/> one one-way delay after it arrived.</summary>
    private async Task PipeAsync(TcpClient from, TcpClient to)
    {
        var queue = Channel.CreateUnbounded<(long Due, byte[] Data)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        long delayTicks = (long)(_oneWay.TotalSeconds * Stopwatch.Frequency);
        Task writer = Task.Run(async () =>
        {
            try
            {
                NetworkStream output = to.GetStream();
                await foreach ((long due, byte[] data) in queue.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
                {
                    long wait = due - Stopwatch.GetTimestamp();
                    if (wait > 0)
                    {
                        await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), _stop.Token).ConfigureAwait(false);
                    }

                    await output.WriteAsync(data, _stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
            {
            }
            finally
            {
                to.Dispose();
            }
        });

        try
        {
            NetworkStream input = from.GetStream();
            byte[] buffer = new byte[64 * 1024];
            while (true)
            {
                int n = await input.ReadAsync(buffer, _stop.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                queue.Writer.TryWrite((Stopwatch.GetTimestamp() + delayTicks, buffer[..n]));
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
        finally
        {
            queue.Writer.TryComplete();
        }

        await writer.ConfigureAwait(false);
        from.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _accepting.ConfigureAwait(false);
        Task[] tasks;
        lock (_tasks)
        {
            tasks = [.. _tasks];
        }

        await Task.WhenAll(tasks).ConfigureAwait(false);
        _listener.Dispose();
        _stop.Dispose();
    }
}
