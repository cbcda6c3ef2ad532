namespace Conclave.Policy;

/// <summary>Ids of principals, rules, groups, venues, keys and counters: 1-128 characters from [A-Za-z0-9._:@-].</summary>
internal static class Identifiers
{
    public static bool IsValid(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 128)
        {
            return false;
        }

        foreach (char c in id)
        {
            bool ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '_' or ':' or '@' or '-';
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }
}
