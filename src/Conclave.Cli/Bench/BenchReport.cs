using System.Text.Json.Serialization;

namespace Conclave.Cli.Bench;

/// <summary>What `conclave bench` measured: the machine, the settings, the same-run baseline and one row per measurement.</summary>
internal sealed class BenchReport
{
    public int FormatVersion { get; init; } = 1;

    public required DateTimeOffset StartedAt { get; init; }

    public DateTimeOffset FinishedAt { get; set; }

    public required BenchMachine Machine { get; set; }

    public required BenchSettingsRecord Settings { get; init; }

    /// <summary>The baseline row's id (libsecp256k1 ECDSA signing in-process); every ratio divides by its p50.</summary>
    public string BaselineId { get; init; } = BenchRows.BaselineId;

    public double BaselineP50Us { get; set; }

    public List<BenchRow> Rows { get; } = [];

    /// <summary>Rows that could not run here, with the reason (an HSM not configured, say).</summary>
    public List<BenchSkip> NotMeasured { get; } = [];

    public List<ComparisonRow> Comparison { get; } = [];
}

internal sealed record BenchSettingsRecord(double DurationSeconds, int Concurrency, bool Cluster, IReadOnlyList<string> Shapes, IReadOnlyList<string>? Schemes,
    string NodeTransport = "frames", int SignStepsInFlight = 2);

internal sealed record BenchSkip(string Id, string Reason);

/// <summary>The machine the figures belong to; load averages before and after say whether it was busy.</summary>
internal sealed record BenchMachine(
    string Cpu,
    int LogicalCores,
    long MemoryBytes,
    string Os,
    string Runtime,
    IReadOnlyList<string> NativeLibraries,
    string? LoadAverageAtStart,
    string? LoadAverageAtEnd);

/// <summary>One measured configuration.</summary>
internal sealed class BenchRow
{
    public required string Id { get; init; }

    /// <summary>single-key | hsm | mpc | multisig | post-quantum | rotation | policy.</summary>
    public required string Family { get; init; }

    /// <summary>
    /// What <see cref="Sign"/> times: <c>sign</c> for every family but rotation (<c>sign-presigned</c> for the online
    /// round of a DKLs23 signature from the presignature pool); for rotation rows <c>refresh</c> or
    /// <c>reshare</c> (one run through the API, its latency), or <c>sign-during-refresh</c> (signatures while refreshes of
    /// the same key run back to back); <c>decide</c> for policy rows (one policy decision in process).
    /// </summary>
    public string Operation { get; init; } = "sign";

    public required string Scheme { get; init; }

    /// <summary>"1-of-1" for single keys, "t-of-n" for threshold keys and multisig.</summary>
    public required string Shape { get; init; }

    /// <summary>in-process (protocol arithmetic only) | cluster-rest (POST /v1/keys/{name}/sign through the server and node processes).</summary>
    public required string Where { get; init; }

    /// <summary>Key generation, or the DKG through the cluster, in milliseconds.</summary>
    public double KeyGenerationMs { get; set; }

    /// <summary>
    /// For presigned rows (operation <c>sign-presigned</c>): milliseconds of background presigning per presignature (one
    /// batch of the pool, the coordinator's parallelism at a time, nothing else running). Null otherwise.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? PresignMs { get; set; }

    public required Latency Sign { get; init; }

    /// <summary>Sequential signatures per second (1 / mean latency).</summary>
    public double SequentialPerSecond => Sign.MeanUs > 0 ? 1e6 / Sign.MeanUs : 0;

    public double ConcurrentPerSecond { get; set; }

    public int Concurrency { get; set; }

    public double VerifyUs { get; set; }

    /// <summary>Size of the signature produced.</summary>
    public int SignatureBytes { get; set; }

    /// <summary>
    /// For cluster rows: protocol bytes between the coordinator and the nodes per signature (protobuf sizes, without
    /// HTTP/2 and TLS framing), plus the REST request and response bodies. Null in process.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? NodeBytesPerSignature { get; set; }

    /// <summary>
    /// For threshold cluster rows: the protocol bytes a signing party sends per signature (its step replies: its share and
    /// its messages to its peers, which the server relays), the nodes' total over the t signers of each signature. Null otherwise.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? PartyBytesPerSignature { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? RestBytesPerSignature { get; set; }

    /// <summary>
    /// For cluster rows: CPU time of the server process and every node process together per signature, over the
    /// concurrent phase (process CPU clocks read before and after; the machine's other load does not count, so this is
    /// the figure to compare across runs and cluster shapes). Null in process.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? CpuUsPerSignature { get; set; }

    /// <summary>Sign p50 divided by the same-run baseline's sign p50.</summary>
    public double RatioToBaseline { get; set; }

    /// <summary>Who must be compromised to produce a signature with this configuration.</summary>
    public required string SecurityProfile { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Note { get; set; }
}

/// <summary>One line of the HSM / MPC / multisig comparison, built from this run's rows.</summary>
internal sealed record ComparisonRow(
    string Approach,
    string RowId,
    string SecurityProfile,
    double SignP50Us,
    double SignP99Us,
    double ThroughputPerSecond,
    string Scalability);
