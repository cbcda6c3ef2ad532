using System.Globalization;
using Conclave.Policy.Documents;
using Conclave.Policy.Operations;

namespace Conclave.Policy.Evaluation;

/// <summary>
/// Per-transaction and velocity limits of one permitting rule, scaled by the risk level's multiplier. A limit that
/// needs an amount the request lacks, or a USD price the context lacks, fails closed.
/// </summary>
internal static class LimitChecker
{
    /// <summary>Null when every limit holds (reservations appended); otherwise the reason it does not.</summary>
    public static string? Check(PolicyRule rule, Limits limits, OperationRequest req, EvaluationContext ctx, IVelocityCounters counters, decimal multiplier, string policyId, List<Reservation> reservations)
    {
        try
        {
            return CheckCore(rule, limits, req, ctx, counters, multiplier, policyId, reservations);
        }
        catch (OverflowException)
        {
            return $"rule {rule.Id}: an amount is out of range";
        }
    }

    private static string? CheckCore(PolicyRule rule, Limits limits, OperationRequest req, EvaluationContext ctx, IVelocityCounters counters, decimal multiplier, string policyId, List<Reservation> reservations)
    {
        bool needsNative = limits.PerTransactionNative is not null || limits.Velocity.Any(v => v.SumNative is not null);
        bool needsUsd = limits.PerTransactionUsd is not null || limits.Velocity.Any(v => v.SumUsd is not null);
        decimal amount = 0m, usd = 0m;
        if (needsNative || needsUsd)
        {
            if (req.Amount is not { } a)
            {
                return $"rule {rule.Id} limits amounts and the request has no amount";
            }

            if (a < 0)
            {
                return $"rule {rule.Id}: a negative amount is refused";
            }

            amount = a;
        }

        if (needsUsd)
        {
            if (req.PriceSource is null || ctx.UsdPrices is null || !ctx.UsdPrices.TryGetValue(req.PriceSource, out decimal price) || price <= 0)
            {
                return $"rule {rule.Id} limits USD value and no fresh price is available for the request";
            }

            try
            {
                usd = checked(amount * price);
            }
            catch (OverflowException)
            {
                return $"rule {rule.Id}: USD value out of range";
            }
        }

        string m = multiplier.ToString(CultureInfo.InvariantCulture);
        if (limits.PerTransactionNative is { } maxNative && amount > maxNative * multiplier)
        {
            return $"rule {rule.Id}: amount exceeds the per-transaction limit of {F(maxNative * multiplier)} (x{m} at this level)";
        }

        if (limits.PerTransactionUsd is { } maxUsd && usd > maxUsd * multiplier)
        {
            return $"rule {rule.Id}: USD value exceeds the per-transaction limit of {F(maxUsd * multiplier)} USD (x{m} at this level)";
        }

        foreach (var v in limits.Velocity)
        {
            string key = CounterKey(policyId, rule.Id, v, req.Principal.Id);
            var t = counters.Read(key, v.WindowSeconds, ctx.Now);
            decimal? capNative = v.SumNative * multiplier;
            decimal? capUsd = v.SumUsd * multiplier;
            long? capCount = v.Count is { } c ? (long)decimal.Floor(c * multiplier) : null;
            if (capNative is { } cn && t.Native + amount > cn)
            {
                return $"rule {rule.Id}: velocity limit {v.Id} ({F(cn)} native per {v.WindowSeconds} s) would be exceeded";
            }

            if (capUsd is { } cu && t.Usd + usd > cu)
            {
                return $"rule {rule.Id}: velocity limit {v.Id} ({F(cu)} USD per {v.WindowSeconds} s) would be exceeded";
            }

            if (capCount is { } cc && t.Count + 1 > cc)
            {
                return $"rule {rule.Id}: velocity limit {v.Id} ({cc} requests per {v.WindowSeconds} s) would be exceeded";
            }

            reservations.Add(new Reservation(key, v.WindowSeconds, amount, usd, 1, capNative, capUsd, capCount));
        }

        return null;
    }

    /// <summary><c>policyId/ruleId/limitId/</c> then <c>p:principal</c> or <c>shared</c>; versions of a policy share counters.</summary>
    public static string CounterKey(string policyId, string ruleId, VelocityLimit v, string principalId) =>
        $"{policyId}/{ruleId}/{v.Id}/" + (v.Scope == LimitScope.Principal ? "p:" + principalId : "shared");

    private static string F(decimal d) => PolicyCanonicalWriter.Number(d);
}
