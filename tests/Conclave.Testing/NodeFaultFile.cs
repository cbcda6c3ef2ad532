namespace Conclave.Testing;

/// <summary>
/// The file a test node host started with <c>--fault-file</c> (tests/Conclave.Node.FaultyNode, SwitchableFaults) reads
/// its fault from at every hook: "OPTION NAME GENERATION" (OPTION "--dkg-fault" or "--dkls-fault"), or nothing for no
/// fault. Each choice writes a new generation, so the host makes a fresh fault of that name; the line is replaced whole
/// (written beside the file, then moved over it), so the host never reads half of one.
/// </summary>
public sealed class NodeFaultFile
{
    private int _generation;

    /// <summary>A fault file at <paramref name="path"/>, holding no fault.</summary>
    public NodeFaultFile(string path)
    {
        FilePath = path;
        Clear();
    }

    public string FilePath { get; }

    /// <summary>The host's arguments that make it read this file.</summary>
    public IReadOnlyList<string> HostArguments => ["--fault-file", FilePath];

    /// <summary>From the host's next hook on, a fresh <paramref name="fault"/> of the kind <paramref name="option"/> names.</summary>
    public void Choose(string option, string fault) => Write($"{option} {fault} {Interlocked.Increment(ref _generation)}");

    /// <summary>From the host's next hook on, no fault: it acts as an honest node.</summary>
    public void Clear() => Write("");

    /// <summary>Runs <paramref name="body"/> with <paramref name="fault"/> chosen, then clears it.</summary>
    public async Task WithAsync(string option, string fault, Func<Task> body)
    {
        Choose(option, fault);
        try
        {
            await body().ConfigureAwait(false);
        }
        finally
        {
            Clear();
        }
    }

    private void Write(string line)
    {
        string temp = FilePath + ".tmp";
        File.WriteAllText(temp, line);
        File.Move(temp, FilePath, overwrite: true);
    }
}
