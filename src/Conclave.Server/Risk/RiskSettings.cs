using System.Text.Json.Serialization;
using Conclave.Node.Config;
using Conclave.Policy.Documents;
using Conclave.Policy.Risk;

namespace Conclave.Server.Risk;

/// <summary>
/// The <c>risk</c> section of server.json (docs/OPERATIONS.md "Risk levels"): the thresholds of the triggers Conclave
/// computes itself, the cool-down, who may vote to leave lockdown, from which level a rise demands a rotation of the
/// scheduled keys, and how often a replica re-reads the shared level. Every field is optional (the defaults are
/// <see cref="RiskConfig"/>'s); <see cref="ToConfig"/> validates and says which field is wrong.
/// </summary>
public sealed class RiskSettings
{
    public long? VolatilityWindowSeconds { get; set; }

    /// <summary>Realised-volatility thresholds by level name (elevated, stressed, lockdown).</summary>
    public Dictionary<string, double>? Volatility { get; set; }

    public long? StalePriceSeconds { get; set; }

    public string? StalePriceLevel { get; set; }

    public long? ThreatWindowSeconds { get; set; }

    /// <summary>Threat-event count thresholds by level name.</summary>
    public Dictionary<string, double>? Threat { get; set; }

    public string? CulpritLevel { get; set; }

    public long? CoolDownSeconds { get; set; }

    public LockdownExitSettings? LockdownExit { get; set; }

    /// <summary>A rise to this level or higher demands a refresh of every key with a rotation schedule; "none" never. Default stressed.</summary>
    public string? RotateAtLevel { get; set; }

    /// <summary>Price sources read from contracts through the chains' upstreams (<see cref="PriceFeed"/>); validated with the upstreams by ServerConfig.</summary>
    public List<PriceFeedSettings>? PriceFeeds { get; set; }

    /// <summary>How often a replica re-reads the shared level and recomputes the triggers. Default 1000.</summary>
    public int? PollMilliseconds { get; set; }

    /// <summary>The validated thresholds; a <see cref="ConfigException"/> naming the field otherwise.</summary>
    public RiskConfig ToConfig()
    {
        var d = new RiskConfig();
        long window = Seconds(VolatilityWindowSeconds, d.VolatilityWindowSeconds, "risk.volatilityWindowSeconds", 60, 7 * 86400);
        long stale = Seconds(StalePriceSeconds, d.StalePriceSeconds, "risk.stalePriceSeconds", 1, 7 * 86400);
        long threatWindow = Seconds(ThreatWindowSeconds, d.ThreatWindowSeconds, "risk.threatWindowSeconds", 1, 86400);
        long coolDown = Seconds(CoolDownSeconds, (long)d.CoolDown.TotalSeconds, "risk.coolDownSeconds", 0, 7 * 86400);
        IReadOnlyList<LevelThreshold> vol = Volatility is null ? d.Volatility : Thresholds(Volatility, "risk.volatility", 1e-9, 100);
        IReadOnlyList<LevelThreshold> threat = Threat is null ? d.Threat : Thresholds(Threat, "risk.threat", 1, 1e9);
        if (threat.Any(t => t.AtLeast != Math.Floor(t.AtLeast)))
        {
            throw new ConfigException("risk.threat: counts must be whole numbers");
        }

        ApprovalGroup exit = d.LockdownExit;
        if (LockdownExit is { } l)
        {
            IReadOnlyList<string> members = l.Approvers ?? [];
            if (members.Any(m => !IsPrincipalId(m)))
            {
                throw new ConfigException("risk.lockdownExit.approvers: each must be a principal id of 1-128 characters from [A-Za-z0-9._:@-]");
            }

            if (members.Distinct(StringComparer.Ordinal).Count() != members.Count)
            {
                throw new ConfigException("risk.lockdownExit.approvers: an approver is listed twice");
            }

            int k = l.K ?? 1;
            if (k < 1 || k > Math.Max(1, members.Count))
            {
                throw new ConfigException($"risk.lockdownExit.k must be from 1 to the number of approvers ({members.Count})");
            }

            exit = new ApprovalGroup("lockdown-exit", [.. members], k);
        }

        return d with
        {
            VolatilityWindowSeconds = window,
            Volatility = vol,
            StalePriceSeconds = stale,
            StalePriceLevel = Level(StalePriceLevel, d.StalePriceLevel, "risk.stalePriceLevel"),
            ThreatWindowSeconds = threatWindow,
            Threat = threat,
            CulpritLevel = Level(CulpritLevel, d.CulpritLevel, "risk.culpritLevel"),
            CoolDown = TimeSpan.FromSeconds(coolDown),
            LockdownExit = exit,
        };
    }

    /// <summary>The validated <see cref="RotateAtLevel"/>; null for "none".</summary>
    public RiskLevel? RotationLevel() => RotateAtLevel == "none" ? null : Level(RotateAtLevel, RiskLevel.Stressed, "risk.rotateAtLevel");

    /// <summary>The validated <see cref="PollMilliseconds"/>.</summary>
    public TimeSpan PollInterval() => PollMilliseconds is null ? TimeSpan.FromSeconds(1)
        : PollMilliseconds is >= 50 and <= 60_000 ? TimeSpan.FromMilliseconds(PollMilliseconds.Value)
        : throw new ConfigException("risk.pollMilliseconds must be between 50 and 60000");

    /// <summary>Checks every field (called by ServerConfig.Validate).</summary>
    public void Validate()
    {
        _ = ToConfig();
        _ = RotationLevel();
        _ = PollInterval();
    }

    private static long Seconds(long? value, long fallback, string field, long min, long max) =>
        value is null ? fallback : value >= min && value <= max ? value.Value : throw new ConfigException($"{field} must be between {min} and {max}");

    private static RiskLevel Level(string? name, RiskLevel fallback, string field)
    {
        if (name is null)
        {
            return fallback;
        }

        return RiskLevels.TryParse(name, out RiskLevel level) && level != RiskLevel.Normal
            ? level
            : throw new ConfigException($"{field} must be elevated, stressed or lockdown");
    }

    private static List<LevelThreshold> Thresholds(Dictionary<string, double> byLevel, string field, double min, double max)
    {
        var list = new List<LevelThreshold>();
        foreach ((string name, double value) in byLevel)
        {
            if (!RiskLevels.TryParse(name, out RiskLevel level) || level == RiskLevel.Normal)
            {
                throw new ConfigException($"{field}: levels are elevated, stressed and lockdown (a key is not one of them)");
            }

            if (!double.IsFinite(value) || value < min || value > max)
            {
                throw new ConfigException($"{field}.{RiskLevels.Name(level)} must be between {min} and {max}");
            }

            list.Add(new LevelThreshold(level, value));
        }

        list.Sort((a, b) => a.Level.CompareTo(b.Level));
        for (int i = 1; i < list.Count; i++)
        {
            if (list[i].AtLeast <= list[i - 1].AtLeast)
            {
                throw new ConfigException($"{field}.{RiskLevels.Name(list[i].Level)} must be higher than {field}.{RiskLevels.Name(list[i - 1].Level)}");
            }
        }

        return list;
    }

    private static bool IsPrincipalId(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= 128 && id.All(c => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '_' or ':' or '@' or '-');
}

/// <summary>Who may vote to leave lockdown (principal ids of approvers) and how many distinct votes it takes.</summary>
public sealed class LockdownExitSettings
{
    public List<string>? Approvers { get; set; }

    [JsonPropertyName("k")]
    public int? K { get; set; }
}
