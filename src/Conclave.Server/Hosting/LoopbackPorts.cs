using System.Net;
using System.Net.Sockets;

namespace Conclave.Server.Hosting;

/// <summary>
/// Loopback ports for local clusters, tests, benchmarks and the demo: ports that were free when drawn and that no
/// other program of ours will be handed before the caller binds them.
/// <para>
/// Checking that a port is free and binding it later leaves a window in which another program can take it. Three
/// things close that window for the programs that draw here: ports come from below Linux's ephemeral range (32768 and
/// up), so no outgoing connection is given one; each process draws from its own band of the range, claimed by an
/// exclusive lock on a file that the operating system releases when the process ends, so two test processes running
/// side by side never draw the same port; and within a process a port is handed out once, until the band has been
/// gone through (ports of long-stopped clusters are then free again).
/// </para>
/// </summary>
public static class LoopbackPorts
{
    private const int Floor = 20000;

    private const int Ceiling = 32700;

    private const int Bands = 8;

    private const int BandSize = (Ceiling - Floor) / Bands;

    private static readonly Lock Gate = new();

#pragma warning disable IDE0052 // the lock on the band file is held by keeping the stream open for the process's life
    private static FileStream? _bandLock;
#pragma warning restore IDE0052

    private static int _bandStart = -1;

    private static int _cursor;

    /// <summary>One free port.</summary>
    public static int Take() => Take(1);

    /// <summary><paramref name="count"/> consecutive free ports; the first is returned.</summary>
    public static int Take(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, 64);
        lock (Gate)
        {
            if (_bandStart < 0)
            {
                ClaimBand();
            }

            // At most two passes over the band: ports skipped because they were busy may be free on the second.
            for (int tried = 0; tried < 2 * BandSize; tried++)
            {
                if (_cursor + count > BandSize)
                {
                    _cursor = 0;
                }

                int start = _bandStart + _cursor;
                _cursor += count;
                if (AllFree(start, count))
                {
                    return start;
                }
            }

            throw new InvalidOperationException($"no {count} consecutive free loopback ports in {_bandStart}–{_bandStart + BandSize - 1}");
        }
    }

    private static bool AllFree(int start, int count)
    {
        for (int i = 0; i < count; i++)
        {
            try
            {
                using var l = new TcpListener(IPAddress.Loopback, start + i);
                l.Start();
            }
            catch (SocketException)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Takes the first band whose lock file this process can hold exclusively, starting from a random band; with every
    /// band held (more than eight processes drawing at once) the process shares a random band and relies on the check.
    /// </summary>
    private static void ClaimBand()
    {
        string dir = Path.Combine(Path.GetTempPath(), "conclave-port-bands");
        int first = Random.Shared.Next(Bands);
        try
        {
            Directory.CreateDirectory(dir);
            for (int i = 0; i < Bands; i++)
            {
                int band = (first + i) % Bands;
                try
                {
                    _bandLock = new FileStream(Path.Combine(dir, "band-" + band.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                        FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                    _bandStart = Floor + band * BandSize;
                    _cursor = Random.Shared.Next(BandSize);
                    return;
                }
                catch (IOException)
                {
                    // held by another process
                }
            }
        }
        catch (UnauthorizedAccessException)
        {
            // a temporary folder we may not write: fall through to a shared band
        }

        _bandStart = Floor + first * BandSize;
        _cursor = Random.Shared.Next(BandSize);
    }
}
