using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Conclave.Benchmarks -- --filter '*'
// A short run: add --job short. Results go to BenchmarkDotNet.Artifacts/ and, summarised, to docs/PERFORMANCE.md.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
