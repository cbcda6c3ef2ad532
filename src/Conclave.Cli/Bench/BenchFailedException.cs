namespace Conclave.Cli.Bench;

/// <summary>
/// A measurement that could not be taken (the cluster did not start, a request failed, a signature did not verify):
/// the CLI prints the message as one line and exits 1. Messages carry status codes and the server's problem text,
/// which never holds a secret.
/// </summary>
internal sealed class BenchFailedException : Exception
{
    public BenchFailedException() { }

    public BenchFailedException(string message) : base(message) { }

    public BenchFailedException(string message, Exception innerException) : base(message, innerException) { }
}
