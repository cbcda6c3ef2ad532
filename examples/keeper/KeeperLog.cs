using System.Globalization;

namespace Conclave.Keeper;

/// <summary>
/// One line per event on standard output, each starting with the UTC time to the millisecond (ISO 8601), so a reader
/// (an operator, a test measuring latency on the same machine) can line events up with the chain's.
/// </summary>
internal sealed class KeeperLog(TextWriter output, TimeProvider time)
{
    private readonly Lock _gate = new();

    public void Line(string text)
    {
        string stamp = time.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        string oneLine = text.ReplaceLineEndings(" ");
        lock (_gate)
        {
            output.WriteLine(stamp + " " + oneLine);
            output.Flush();
        }
    }
}
