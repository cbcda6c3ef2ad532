using BenchmarkDotNet.Running;
using Conclave.Benchmarks.Cluster;

// Micro-benchmarks: dotnet run -c Release --project bench/Conclave.Benchmarks -- --filter '*' [--job short]
// Cluster benchmark (real node processes, mutual TLS): dotnet run -c Release --project bench/Conclave.Benchmarks -- cluster
// DKLs23 by sub-protocol, in process (Stopwatch + process CPU): dotnet run -c Release --project bench/Conclave.Benchmarks -- dkls [runs]
// A velocity reservation inside the audit commit, paired with the commit alone: dotnet run -c Release --project bench/Conclave.Benchmarks -- counters [seconds]
// The audit commit's latency and its tail, one caller: dotnet run -c Release --project bench/Conclave.Benchmarks -- audit [seconds]
// The REST API benchmark (the cluster behind the server, what a venue sees) is `conclave bench --cluster`.
// Results go to docs/PERFORMANCE.md with the same-run baseline.
if (args.Length > 0 && args[0] == "cluster")
{
    return await ClusterBenchmark.RunAsync(args[1..]).ConfigureAwait(false);
}

if (args.Length > 0 && args[0] == "dkls")
{
    return Conclave.Benchmarks.Threshold.DklsSteps.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "audit")
{
    return await Conclave.Benchmarks.Storage.AuditSteps.RunAsync(args[1..]).ConfigureAwait(false);
}

if (args.Length > 0 && args[0] == "counters")
{
    return await Conclave.Benchmarks.Storage.CounterSteps.RunAsync(args[1..]).ConfigureAwait(false);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
