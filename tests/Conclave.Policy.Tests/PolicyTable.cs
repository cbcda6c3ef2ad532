using System.Globalization;
using System.Text.Json;
using Conclave.Policy.Documents;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;

namespace Conclave.Policy.Tests;

/// <summary>Loads tests/vectors/conclave/policy-table.json: the policy, principals, keys and rows with expected decisions.</summary>
internal static class PolicyTable
{
    private static readonly Lazy<JsonDocument> s_doc = new(() => JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector("conclave/policy-table.json"))));

    public static JsonElement Root => s_doc.Value.RootElement;

    public static PolicyDocument Policy { get; } = PolicyDocument.Parse(Root.GetProperty("policy").GetRawText());

    public static IReadOnlyList<JsonElement> Rows => [.. Root.GetProperty("rows").EnumerateArray()];

    public static Principal Principal(string id)
    {
        var p = Root.GetProperty("principals").GetProperty(id);
        var kind = p.GetProperty("kind").GetString() == "agent" ? PrincipalKind.Agent : PrincipalKind.Person;
        var roles = p.GetProperty("roles").EnumerateArray().Select(r => Roles.TryParse(r.GetString(), out var role) ? role : throw new InvalidDataException("role")).ToList();
        var ops = p.GetProperty("operations").EnumerateArray().Select(o => o.GetString()!).ToList();
        var scope = new PrincipalScope(
            [.. p.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!)],
            [.. p.GetProperty("labels").EnumerateArray().Select(k => k.GetString()!)],
            [.. ops.Where(o => o != "*").Select(Operations.Operations.Parse)],
            AnyOperation: ops.Contains("*"));
        return new Principal(id, kind, roles, scope);
    }

    public static IReadOnlyDictionary<string, PolicyValue> Args(JsonElement row)
    {
        var result = new Dictionary<string, PolicyValue>(StringComparer.Ordinal);
        if (row.TryGetProperty("args", out var args))
        {
            foreach (var a in args.EnumerateObject())
            {
                result[a.Name] = PolicyParser.ParseValue(a.Value, a.Name);
            }
        }

        return result;
    }

    public static OperationRequest Request(JsonElement row)
    {
        string key = row.GetProperty("key").GetString()!;
        return new OperationRequest
        {
            Principal = Principal(row.GetProperty("principal").GetString()!),
            Operation = Operations.Operations.Parse(row.GetProperty("operation").GetString()),
            KeyId = key,
            KeyLabels = [.. Root.GetProperty("keys").GetProperty(key).EnumerateArray().Select(l => l.GetString()!)],
            Venue = row.TryGetProperty("venue", out var v) ? v.GetString() : null,
            Args = Args(row),
            Amount = row.TryGetProperty("amount", out var amt) ? amt.GetDecimal() : null,
            PriceSource = row.TryGetProperty("priceSource", out var ps) ? ps.GetString() : null,
            UnknownFields = row.TryGetProperty("unknownFields", out var uf) ? [.. uf.EnumerateArray().Select(x => x.GetString()!)] : [],
        };
    }

    public static DateTimeOffset At(JsonElement row) => DateTimeOffset.Parse(
        row.TryGetProperty("at", out var at) ? at.GetString()! : Root.GetProperty("defaults").GetProperty("at").GetString()!, CultureInfo.InvariantCulture);

    public static Dictionary<string, decimal> Prices(JsonElement row)
    {
        var el = row.TryGetProperty("prices", out var p) ? p : Root.GetProperty("defaults").GetProperty("prices");
        return el.EnumerateObject().ToDictionary(x => x.Name, x => x.Value.GetDecimal(), StringComparer.Ordinal);
    }

    public static IVelocityCounters Counters(JsonElement row)
    {
        var totals = new Dictionary<string, VelocityTotals>(StringComparer.Ordinal);
        if (row.TryGetProperty("counters", out var c))
        {
            foreach (var k in c.EnumerateObject())
            {
                decimal native = k.Value.TryGetProperty("native", out var n) ? n.GetDecimal() : 0;
                decimal usd = k.Value.TryGetProperty("usd", out var u) ? u.GetDecimal() : 0;
                long count = k.Value.TryGetProperty("count", out var cnt) ? cnt.GetInt64() : 0;
                totals[k.Name] = new VelocityTotals(native, usd, count);
            }
        }

        return new FixedCounters(totals);
    }

    private sealed class FixedCounters(Dictionary<string, VelocityTotals> totals) : IVelocityCounters
    {
        public VelocityTotals Read(string counterKey, long windowSeconds, DateTimeOffset now) => totals.TryGetValue(counterKey, out var t) ? t : default;
    }
}
