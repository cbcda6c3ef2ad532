using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Conclave.Server.Coordinator;
using Conclave.Storage.Keys;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Api;

/// <summary>
/// Prometheus text exposition (version 0.0.4) written by hand: request counts by route and status, signing latency
/// histograms by scheme, node health (as last seen by /readyz or a scrape), FROST commitment-pool depth per key and node.
/// No label ever carries a secret or a request body.
/// </summary>
public sealed class ServerMetrics
{
    private static readonly double[] Buckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

    /// <summary>Policy authorizations take microseconds: finer buckets.</summary>
    private static readonly double[] PolicyBuckets = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25];
    private readonly ConcurrentDictionary<(string Method, string Route, int Status), long> _requests = new();
    private readonly ConcurrentDictionary<string, Histogram> _sign = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<uint, int> _nodeUp = new();
    private readonly Histogram _policy = new(PolicyBuckets);

    /// <summary>The risk level shown as a gauge (null: not shown).</summary>
    public IRiskLevelSource? Risk { get; init; }

    public void CountRequest(string method, string route, int status) => _requests.AddOrUpdate((method, route, status), 1, (_, n) => n + 1);

    public void ObserveSign(string scheme, TimeSpan elapsed) => _sign.GetOrAdd(scheme, _ => new Histogram(Buckets)).Observe(elapsed.TotalSeconds);

    /// <summary>
    /// Every time a policy authorization took, kept one by one while set (`conclave bench --cluster` sets it around a
    /// row to report what policy adds to a signature through REST, docs/PERFORMANCE.md); null outside benchmarks.
    /// </summary>
    public ConcurrentQueue<TimeSpan>? PolicyTimes { get; set; }

    /// <summary>One policy authorization (decision, its audit entry, the velocity reservation), allowed or not.</summary>
    public void ObservePolicy(TimeSpan elapsed)
    {
        _policy.Observe(elapsed.TotalSeconds);
        PolicyTimes?.Enqueue(elapsed);
    }

    public void SetNodesUp(IEnumerable<uint> all, IReadOnlyList<uint> up)
    {
        foreach (uint n in all)
        {
            _nodeUp[n] = up.Contains(n) ? 1 : 0;
        }
    }

    public async Task<string> RenderAsync(KeyService keys, Cluster cluster, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(cluster);
        IReadOnlyList<uint> nodesUp = await cluster.AttestAsync(ct).ConfigureAwait(false);
        SetNodesUp(cluster.NodeIds, nodesUp);
        var sb = new StringBuilder();
        sb.AppendLine("# HELP conclave_http_requests_total HTTP requests by method, route and status.");
        sb.AppendLine("# TYPE conclave_http_requests_total counter");
        foreach (var ((method, route, status), n) in _requests.OrderBy(k => k.Key.Route, StringComparer.Ordinal))
        {
            sb.Append(CultureInfo.InvariantCulture, $"conclave_http_requests_total{{method=\"{method}\",route=\"{Escape(route)}\",status=\"{status}\"}} {n}\n");
        }

        sb.AppendLine("# HELP conclave_sign_duration_seconds Time to produce a signature, by scheme.");
        sb.AppendLine("# TYPE conclave_sign_duration_seconds histogram");
        foreach (var (scheme, h) in _sign.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            h.Write(sb, "conclave_sign_duration_seconds", $"scheme=\"{scheme}\"");
        }

        sb.AppendLine("# HELP conclave_policy_seconds Time to authorize a signing request by policy (decision, its audit entry, velocity reservation).");
        sb.AppendLine("# TYPE conclave_policy_seconds histogram");
        _policy.Write(sb, "conclave_policy_seconds", null);

        sb.AppendLine("# HELP conclave_node_up Whether a signer node answered the last attestation (1) or not (0).");
        sb.AppendLine("# TYPE conclave_node_up gauge");
        foreach (var (node, up) in _nodeUp.OrderBy(k => k.Key))
        {
            sb.Append(CultureInfo.InvariantCulture, $"conclave_node_up{{node=\"{node}\"}} {up}\n");
        }

        sb.AppendLine("# HELP conclave_nonce_pool_depth Round-1 commitments the coordinator holds per FROST key and node.");
        sb.AppendLine("# TYPE conclave_nonce_pool_depth gauge");
        IReadOnlyList<KeyRecord> all = await keys.Store.Keys.ListAsync(ct).ConfigureAwait(false);
        foreach (KeyRecord k in all)
        {
            FrostKeyInfo? info = keys.Frost.Find(k.Id);
            if (info is null)
            {
                continue;
            }

            foreach (uint node in info.Nodes)
            {
                sb.Append(CultureInfo.InvariantCulture, $"conclave_nonce_pool_depth{{key=\"{Escape(k.Name)}\",node=\"{node}\"}} {keys.Frost.PoolDepth(k.Id, node)}\n");
            }
        }

        sb.AppendLine("# HELP conclave_presignature_pool_depth DKLs23 presignatures the coordinator holds per key (current version, root path, every signer set).");
        sb.AppendLine("# TYPE conclave_presignature_pool_depth gauge");
        foreach (KeyRecord k in all)
        {
            if (keys.Dkls.Find(k.Id) is not null)
            {
                sb.Append(CultureInfo.InvariantCulture, $"conclave_presignature_pool_depth{{key=\"{Escape(k.Name)}\"}} {keys.Dkls.PresignDepth(k.Id, [])}\n");
            }
        }

        // Continuous rotation (docs/ROTATION.md): per scheduled key, the last scheduled rotation, when the next is due and
        // failed attempts.
        IReadOnlyList<Conclave.Storage.Rotation.RotationSchedule> schedules = await keys.Store.RotationSchedules.ListAsync(ct).ConfigureAwait(false);
        if (schedules.Count > 0)
        {
            Dictionary<string, string> names = (await keys.Store.Keys.ListAsync(ct).ConfigureAwait(false)).ToDictionary(k => k.Id, k => k.Name, StringComparer.Ordinal);
            sb.AppendLine("# HELP conclave_rotation_last_timestamp_seconds When the key's last scheduled rotation finished (0: none yet).");
            sb.AppendLine("# TYPE conclave_rotation_last_timestamp_seconds gauge");
            sb.AppendLine("# HELP conclave_rotation_next_due_timestamp_seconds When the key's next scheduled rotation is due (0: only after N signatures).");
            sb.AppendLine("# TYPE conclave_rotation_next_due_timestamp_seconds gauge");
            sb.AppendLine("# HELP conclave_rotation_failures_total Failed scheduled rotations of the key.");
            sb.AppendLine("# TYPE conclave_rotation_failures_total counter");
            foreach (Conclave.Storage.Rotation.RotationSchedule s in schedules)
            {
                string key = Escape(names.GetValueOrDefault(s.KeyId, s.KeyId));
                sb.Append(CultureInfo.InvariantCulture, $"conclave_rotation_last_timestamp_seconds{{key=\"{key}\"}} {s.LastRotation?.ToUnixTimeSeconds() ?? 0}\n");
                sb.Append(CultureInfo.InvariantCulture, $"conclave_rotation_next_due_timestamp_seconds{{key=\"{key}\"}} {s.NextDue?.ToUnixTimeSeconds() ?? 0}\n");
                sb.Append(CultureInfo.InvariantCulture, $"conclave_rotation_failures_total{{key=\"{key}\"}} {s.TotalFailures}\n");
            }
        }

        if (Risk?.Current is { } level)
        {
            sb.AppendLine("# HELP conclave_risk_level The risk level in force: 0 normal, 1 elevated, 2 stressed, 3 lockdown.");
            sb.AppendLine("# TYPE conclave_risk_level gauge");
            sb.Append(CultureInfo.InvariantCulture, $"conclave_risk_level {(int)level.Level}\n");
            sb.AppendLine("# HELP conclave_risk_level_since_timestamp_seconds When the risk level in force began.");
            sb.AppendLine("# TYPE conclave_risk_level_since_timestamp_seconds gauge");
            sb.Append(CultureInfo.InvariantCulture, $"conclave_risk_level_since_timestamp_seconds {level.Since.ToUnixTimeSeconds()}\n");
        }

        WriteKeyHealth(sb, keys, all, nodesUp);
        return sb.ToString();
    }

    /// <summary>
    /// Per threshold key: its holders that answered the attestation of this scrape, whether they reach its threshold
    /// (a key reshared to 3-of-3 cannot sign with one node down even when the cluster's default quorum is up), and
    /// whether the server store and the nodes agree about it (KeyConsistency; 0 while it is out of sync).
    /// </summary>
    private static void WriteKeyHealth(StringBuilder sb, KeyService keys, IReadOnlyList<KeyRecord> all, IReadOnlyList<uint> nodesUp)
    {
        // Every active FROST key of the store, used since start or not: by the holders and threshold its row records, else
        // (a row written before holders were recorded) by its registration if it was used since start.
        var threshold = all.Where(k => k.State == KeyState.Active && FrostCiphersuite.TryGet(k.Scheme, out _))
            .Select(k => (Record: k, Threshold: k.Threshold, Nodes: k.Holders ?? keys.Frost.Find(k.Id)?.Nodes)).Where(x => x.Nodes is not null).ToList();
        sb.AppendLine("# HELP conclave_key_holders_up Holders of a threshold key that answered the last attestation.");
        sb.AppendLine("# TYPE conclave_key_holders_up gauge");
        foreach (var (k, t, nodes) in threshold)
        {
            sb.Append(CultureInfo.InvariantCulture, $"conclave_key_holders_up{{key=\"{Escape(k.Name)}\",threshold=\"{t}\"}} {nodes!.Count(nodesUp.Contains)}\n");
        }

        sb.AppendLine("# HELP conclave_key_quorum_reachable Whether a threshold key has at least its threshold of holders up (1) or cannot sign (0).");
        sb.AppendLine("# TYPE conclave_key_quorum_reachable gauge");
        foreach (var (k, t, nodes) in threshold)
        {
            int reachable = nodes!.Count(nodesUp.Contains) >= t ? 1 : 0;
            sb.Append(CultureInfo.InvariantCulture, $"conclave_key_quorum_reachable{{key=\"{Escape(k.Name)}\"}} {reachable}\n");
        }

        sb.AppendLine("# HELP conclave_key_in_sync Whether the server store and the signer nodes agree about a threshold key (1) or not (0).");
        sb.AppendLine("# TYPE conclave_key_in_sync gauge");
        foreach (var (k, _, _) in threshold)
        {
            int inSync = keys.Consistency?.BlockingReport(k.Id) is null ? 1 : 0;
            sb.Append(CultureInfo.InvariantCulture, $"conclave_key_in_sync{{key=\"{Escape(k.Name)}\"}} {inSync}\n");
        }
    }

    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);

    private sealed class Histogram(double[] buckets)
    {
        private readonly double[] _bounds = buckets;
        private readonly long[] _counts = new long[buckets.Length];
        private long _total;
        private double _sum;
        private readonly Lock _lock = new();

        public void Observe(double seconds)
        {
            lock (_lock)
            {
                for (int i = 0; i < _bounds.Length; i++)
                {
                    if (seconds <= _bounds[i])
                    {
                        _counts[i]++;
                    }
                }

                _total++;
                _sum += seconds;
            }
        }

        public void Write(StringBuilder sb, string name, string? labels)
        {
            string prefix = labels is null ? "" : labels + ",";
            string only = labels is null ? "" : "{" + labels + "}";
            lock (_lock)
            {
                for (int i = 0; i < _bounds.Length; i++)
                {
                    sb.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{prefix}le=\"{_bounds[i]}\"}} {_counts[i]}\n");
                }

                sb.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{prefix}le=\"+Inf\"}} {_total}\n");
                sb.Append(CultureInfo.InvariantCulture, $"{name}_sum{only} {_sum}\n");
                sb.Append(CultureInfo.InvariantCulture, $"{name}_count{only} {_total}\n");
            }
        }
    }
}
