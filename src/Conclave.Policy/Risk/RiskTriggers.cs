using System.Globalization;

namespace Conclave.Policy.Risk;

/// <summary>A price observation from a price source (POST /v1/risk/prices or a feed).</summary>
public readonly record struct PriceSample(DateTimeOffset At, decimal Price);

/// <summary>A number of threat events counted together at one time (a second of a replica's events, shared through the store).</summary>
public readonly record struct ThreatBucket(DateTimeOffset At, long Count);

/// <summary>The inputs the level is computed from at one moment.</summary>
public sealed record RiskSignals
{
    /// <summary>The level an operator or risk system set (PUT /v1/risk); a floor.</summary>
    public RiskLevel Manual { get; init; } = RiskLevel.Normal;

    /// <summary>Price samples by price source.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<PriceSample>> Prices { get; init; } = new Dictionary<string, IReadOnlyList<PriceSample>>();

    /// <summary>Times of threat events: denied requests, badly signed requests.</summary>
    public IReadOnlyList<DateTimeOffset> ThreatEvents { get; init; } = [];

    /// <summary>Threat events counted in buckets (every replica's, through the store); counted with <see cref="ThreatEvents"/>.</summary>
    public IReadOnlyList<ThreatBucket> ThreatBuckets { get; init; } = [];

    /// <summary>Signer nodes named as culprits and not yet cleared.</summary>
    public int CulpritNodes { get; init; }
}

/// <summary>
/// The triggers Conclave computes itself (issue 16 "Risk levels"), each a pure function of the inputs: realised
/// volatility, stale price, threat burst, culprit nodes; the demanded level is the highest of them and the manual level.
/// </summary>
public static class RiskTriggers
{
    /// <summary>
    /// Realised volatility of the samples in (now - window, now]: sqrt(Σ ln(p_i / p_(i-1))²) over consecutive samples
    /// in time order (not annualised). Null with fewer than two samples.
    /// </summary>
    public static double? RealisedVolatility(IReadOnlyList<PriceSample> samples, long windowSeconds, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var from = now - TimeSpan.FromSeconds(windowSeconds);
        var inWindow = samples.Where(s => s.At > from && s.At <= now && s.Price > 0).OrderBy(s => s.At).ToList();
        if (inWindow.Count < 2)
        {
            return null;
        }

        double sum = 0;
        for (int i = 1; i < inWindow.Count; i++)
        {
            double r = Math.Log((double)inWindow[i].Price / (double)inWindow[i - 1].Price);
            sum += r * r;
        }

        return Math.Sqrt(sum);
    }

    /// <summary>The highest level any trigger (or the manual floor) demands, with a reason for each trigger that fired.</summary>
    public static (RiskLevel Level, IReadOnlyList<string> Reasons) Demanded(RiskConfig config, RiskSignals signals, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(signals);
        var level = signals.Manual;
        var reasons = new List<string>();
        if (signals.Manual > RiskLevel.Normal)
        {
            reasons.Add($"set to {RiskLevels.Name(signals.Manual)} by an operator");
        }

        foreach (var (source, samples) in signals.Prices.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (RealisedVolatility(samples, config.VolatilityWindowSeconds, now) is { } vol)
            {
                foreach (var t in config.Volatility.Where(t => vol >= t.AtLeast))
                {
                    if (t.Level > level)
                    {
                        level = t.Level;
                    }

                    reasons.Add($"realised volatility of {source} {vol.ToString("0.####", CultureInfo.InvariantCulture)} over {config.VolatilityWindowSeconds} s is at least {t.AtLeast.ToString(CultureInfo.InvariantCulture)} ({RiskLevels.Name(t.Level)})");
                }
            }

            var latest = samples.Count == 0 ? (DateTimeOffset?)null : samples.Max(s => s.At);
            if (latest is null || config.IsStale(latest.Value, now))
            {
                if (config.StalePriceLevel > level)
                {
                    level = config.StalePriceLevel;
                }

                reasons.Add($"price of {source} is stale (no sample for more than {config.StalePriceSeconds} s)");
            }
        }

        var threatFrom = now - TimeSpan.FromSeconds(config.ThreatWindowSeconds);
        long threats = signals.ThreatEvents.Count(t => t > threatFrom && t <= now)
            + signals.ThreatBuckets.Where(b => b.At > threatFrom && b.At <= now).Sum(b => b.Count);
        foreach (var t in config.Threat.Where(t => threats >= t.AtLeast))
        {
            if (t.Level > level)
            {
                level = t.Level;
            }

            reasons.Add($"{threats} denied or badly signed requests in {config.ThreatWindowSeconds} s ({RiskLevels.Name(t.Level)})");
        }

        if (signals.CulpritNodes > 0)
        {
            if (config.CulpritLevel > level)
            {
                level = config.CulpritLevel;
            }

            reasons.Add($"{signals.CulpritNodes} signer node(s) named as culprit");
        }

        return (level, reasons);
    }
}
