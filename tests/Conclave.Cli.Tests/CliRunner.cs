namespace Conclave.Cli.Tests;

/// <summary>
/// Runs <c>conclave</c> in-process with standard input, output and error redirected. Console redirection is
/// process-wide, so every CLI test class is in the "Console" collection, which xunit runs serially.
/// </summary>
internal static class CliRunner
{
    private static readonly SemaphoreSlim s_gate = new(1, 1);

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static async Task<Result> RunAsync(string? stdin, params string[] args)
    {
        await s_gate.WaitAsync();
        TextReader oldIn = Console.In;
        TextWriter oldOut = Console.Out;
        TextWriter oldErr = Console.Error;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        try
        {
            Console.SetIn(new StringReader(stdin ?? string.Empty));
            Console.SetOut(stdout);
            Console.SetError(stderr);
            int code = await CliApp.RunAsync(args);
            return new Result(code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetIn(oldIn);
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
            s_gate.Release();
        }
    }
}

[CollectionDefinition("Console", DisableParallelization = true)]
public sealed class ConsoleCollection
{
}
