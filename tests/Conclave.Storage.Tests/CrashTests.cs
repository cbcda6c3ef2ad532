using System.Diagnostics;
using Conclave.Storage.Audit;
using Conclave.Storage.Nonces;

namespace Conclave.Storage.Tests;

/// <summary>
/// DESIGN.md safety rule 1 under SIGKILL: a child process consumes nonces (printing each id only after
/// TryConsumeAsync returned, i.e. after the durable commit) and appends audit entries, and is killed at random
/// moments at least 200 times. Across all runs no nonce id may be reported twice, every reported id must be consumed
/// in the store, and the audit chain must verify. (SIGKILL tests process crashes; power loss additionally relies on
/// fsync, which SQLite synchronous=FULL and PostgreSQL synchronous_commit=on request.)
/// </summary>
public abstract class CrashTestBase
{
    private const string KeyId = "crash-key";

    protected abstract EngineHarness Harness { get; }

    protected static bool Long => Environment.GetEnvironmentVariable("CONCLAVE_LONG_TESTS") == "1";

    protected async Task RunAsync(int kills)
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        const int pool = 40_000;
        await using (IConclaveStore store = await loc.OpenAsync())
        {
            for (int start = 0; start < pool; start += 10_000)
            {
                await store.Nonces.IssueAsync([.. Enumerable.Range(start, 10_000).Select(i => new NonceIssue(Id(i), KeyId, NonceKind.Nonce))]);
            }
        }

        string[] childArgs = loc.Engine == StoreEngine.Sqlite ? ["sqlite", loc.SqliteDirectory!] : ["postgres", loc.PostgresConnectionString!];
        var reported = new List<string>();
        // Kill points and the children's choices derive from the run seed (TestSeed; CONCLAVE_TEST_SEED replays them,
        // up to the scheduling of the processes themselves).
        var rng = new Random(BitConverter.ToInt32(Conclave.Testing.TestSeed.Bytes(4, GetType().Name)));
        int countBasedRuns = 0;
        for (int run = 0; run < kills; run++)
        {
            // Half the runs die at a random time, half after a random number of consumptions (mid-work for sure).
            bool byCount = run % 2 == 1;
            countBasedRuns += byCount ? 1 : 0;
            string[] argsWithSeed = [.. childArgs, rng.Next().ToString(System.Globalization.CultureInfo.InvariantCulture)];
            var (lines, exitedByItself) = await RunChildOnceAsync(argsWithSeed, byCount ? -1 : rng.Next(0, 60), byCount ? rng.Next(1, 10) : -1, rng.Next(0, 3));
            reported.AddRange(lines);
            Assert.False(exitedByItself, "the child ran out of nonces or failed; see its output");
        }

        var duplicates = reported.GroupBy(x => x).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(duplicates.Count == 0, $"nonce ids handed out twice: {string.Join(", ", duplicates.Take(5))}");
        Assert.True(reported.Count >= countBasedRuns, $"only {reported.Count} consumptions were reported in {kills} runs");

        await using (IConclaveStore store = await loc.OpenAsync())
        {
            foreach (string id in reported)
            {
                Assert.Equal(NonceStatus.Consumed, await store.Nonces.GetStatusAsync(Convert.FromHexString(id)));
            }

            long consumed = pool - await store.Nonces.CountAvailableAsync(KeyId, NonceKind.Nonce);
            Assert.True(consumed >= reported.Count);

            // The child appends without a checkpoint signer (the chain is what this test checks), so the head is unsigned.
            AuditVerificationResult verify = await store.Audit.VerifyAsync(new AuditVerifyOptions { AllowUnsigned = true });
            Assert.True(verify.Ok, verify.ToString());

            // Each audit entry follows a successful consumption, so no id appears twice and each is consumed.
            var audited = new HashSet<string>();
            for (long from = 1; from <= verify.Head.Seq; from += 1000)
            {
                foreach (AuditEntry e in await store.Audit.ReadAsync(from, 1000))
                {
                    Assert.True(audited.Add(e.Result), $"audit names nonce {e.Result} twice");
                }
            }

            Assert.True(audited.Count <= consumed);
        }
    }

    private static byte[] Id(int i) => BitConverter.GetBytes((long)i).Reverse().ToArray();

    private static string ChildPath()
    {
        string dir = AppContext.BaseDirectory.Replace("Conclave.Storage.Tests", "Conclave.Storage.CrashChild", StringComparison.Ordinal);
        string dll = Path.Combine(dir, "Conclave.Storage.CrashChild.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("crash child not built", dll);
    }

    /// <summary>Starts the child, waits for READY, then kills it after <paramref name="delayMs"/> or after <paramref name="afterConsumptions"/> reports.</summary>
    private static async Task<(List<string> Lines, bool ExitedByItself)> RunChildOnceAsync(string[] args, int delayMs, int afterConsumptions, int extraDelayMs)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(ChildPath());
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var lines = new List<string>();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int count = 0;
        var reader = Task.Run(async () =>
        {
            while (await p.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line == "READY")
                {
                    ready.TrySetResult();
                }
                else if (line.Length == 2 + 16 && line.StartsWith("C ", StringComparison.Ordinal))
                {
                    lock (lines)
                    {
                        lines.Add(line[2..]);
                    }

                    if (Interlocked.Increment(ref count) >= afterConsumptions && afterConsumptions > 0)
                    {
                        enough.TrySetResult();
                    }
                }
            }

            ready.TrySetResult();
            enough.TrySetResult();
        });
        var stderr = p.StandardError.ReadToEndAsync();

        await ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        if (afterConsumptions > 0)
        {
            await enough.Task.WaitAsync(TimeSpan.FromSeconds(60));
            if (extraDelayMs > 0)
            {
                await Task.Delay(extraDelayMs);
            }
        }
        else if (delayMs > 0)
        {
            await Task.Delay(delayMs);
        }

        bool exited = p.HasExited;
        if (!exited)
        {
            p.Kill(entireProcessTree: true);
        }

        await p.WaitForExitAsync();
        await reader;
        string err = await stderr;
        Assert.True(!exited || p.ExitCode == 0, "crash child failed: " + err);
        lock (lines)
        {
            return ([.. lines], exited);
        }
    }
}

public sealed class SqliteCrashTests : CrashTestBase
{
    protected override EngineHarness Harness { get; } = new SqliteHarness();

    [Fact]
    public Task Killing_the_node_never_reuses_a_nonce_and_keeps_the_audit_chain() => RunAsync(Long ? 1000 : 200);
}

public sealed class PostgresCrashTests : CrashTestBase
{
    protected override EngineHarness Harness { get; } = new PostgresHarness();

    // 100 kills by default keeps CI time in budget (each child start costs ~0.5 s of CPU with Npgsql); 1,000 in long runs.
    [Fact]
    public Task Killing_the_node_never_reuses_a_nonce_and_keeps_the_audit_chain() => RunAsync(Long ? 1000 : 100);
}
