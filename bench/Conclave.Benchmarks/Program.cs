using BenchmarkDotNet.Running;
using Conclave.Benchmarks.Cluster;

// Micro-benchmarks: dotnet run -c Release --project bench/Conclave.Benchmarks -- --filter '*' [--job short]
// Cluster benchmark (real node processes, mutual TLS): dotnet run -c Release --project bench/Conclave.Benchmarks -- cluster
// REST API benchmark (the same cluster behind the server): dotnet run -c Release --project bench/Conclave.Benchmarks -- api
// Results go to docs/PERFORMANCE.md with the same-run baseline.
if (args.Length > 0 && args[0] == "cluster")
{
    return await ClusterBenchmark.RunAsync(args[1..]).ConfigureAwait(false);
}

if (args.Length > 0 && args[0] == "api")
{
    return await ApiBenchmark.RunAsync(args[1..]).ConfigureAwait(false);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
