namespace Conclave.Policy.Risk;

/// <summary>Risk levels, ordered: a higher value is a tighter level (issue 16 "Risk levels").</summary>
public enum RiskLevel
{
    Normal = 0,
    Elevated = 1,
    Stressed = 2,
    Lockdown = 3,
}

public static class RiskLevels
{
    public static IReadOnlyList<RiskLevel> All { get; } = [RiskLevel.Normal, RiskLevel.Elevated, RiskLevel.Stressed, RiskLevel.Lockdown];

    public static string Name(RiskLevel level) => level switch
    {
        RiskLevel.Normal => "normal",
        RiskLevel.Elevated => "elevated",
        RiskLevel.Stressed => "stressed",
        RiskLevel.Lockdown => "lockdown",
        _ => throw new ArgumentOutOfRangeException(nameof(level)),
    };

    public static bool TryParse(string? name, out RiskLevel level)
    {
        switch (name)
        {
            case "normal": level = RiskLevel.Normal; return true;
            case "elevated": level = RiskLevel.Elevated; return true;
            case "stressed": level = RiskLevel.Stressed; return true;
            case "lockdown": level = RiskLevel.Lockdown; return true;
            default: level = default; return false;
        }
    }
}
