using Conclave.Server.Hosting;
using Conclave.Storage;
using Microsoft.Extensions.Logging;

namespace Conclave.Server.Tests;

/// <summary>
/// The server's background passes (run recovery, evictions, the key check, continuous rotation, the risk level, due
/// policy changes, counter pruning) run each pass through <see cref="BackgroundLog.RunPassAsync"/>: whatever a pass throws,
/// the loop goes on, and only the server stopping ends it. RotationApiTests.ARunTheRecoveryCannotRead_… shows it on a
/// real server (before, the first unexpected failure ended run recovery until a restart).
/// </summary>
public sealed class BackgroundLogTests
{
    [Fact]
    public async Task AnUnexpectedFailure_IsLoggedWithThePassName_AndTheLoopGoesOn()
    {
        var log = new RecordingLogger();
        int passes = 0;
        using var stopping = new CancellationTokenSource();
        for (int i = 0; i < 3; i++)
        {
            await BackgroundLog.RunPassAsync("risk level", () =>
            {
                passes++;
                return passes == 1 ? throw new FormatException("unknown rotation plan format") : Task.CompletedTask;
            }, log, stopping.Token);
        }

        Assert.Equal(3, passes);
        (LogLevel level, string text) = Assert.Single(log.Entries);
        Assert.Equal(LogLevel.Error, level);
        Assert.Contains("risk level failed with FormatException", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheStoreBusyOrClosing_IsExpected_AndNotLogged()
    {
        var log = new RecordingLogger();
        using var stopping = new CancellationTokenSource();
        await BackgroundLog.RunPassAsync("pruning", () => throw new StorageException("database is locked"), log, stopping.Token);
        await BackgroundLog.RunPassAsync("pruning", () => throw new ObjectDisposedException("store"), log, stopping.Token);
        Assert.Empty(log.Entries);
    }

    [Fact]
    public async Task OnlyTheServerStopping_EndsTheLoop()
    {
        var log = new RecordingLogger();
        using var stopping = new CancellationTokenSource();

        // A cancellation that is not the server stopping (a step's own deadline) is a failed pass like any other.
        await BackgroundLog.RunPassAsync("evictions", () => throw new OperationCanceledException("a step's deadline"), log, stopping.Token);
        Assert.Contains("evictions failed with OperationCanceledException", Assert.Single(log.Entries).Text, StringComparison.Ordinal);

        await stopping.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => BackgroundLog.RunPassAsync("evictions", () => Task.Delay(1000, stopping.Token), log, stopping.Token));

        // Whatever fails while the server stops is not an error of the pass.
        await BackgroundLog.RunPassAsync("evictions", () => throw new InvalidOperationException("the connection was closed"), log, stopping.Token);
        Assert.Single(log.Entries);
    }

    private sealed class RecordingLogger : ILogger
    {
        public List<(LogLevel Level, string Text)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            ArgumentNullException.ThrowIfNull(formatter);
            lock (Entries)
            {
                Entries.Add((logLevel, formatter(state, exception)));
            }
        }
    }
}
