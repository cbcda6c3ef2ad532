using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;

namespace Conclave.Policy.Documents;

/// <summary>
/// A document's rules indexed for decisions (docs/POLICY.md "Decision latency"). The first level is (principal,
/// operation): the rules naming this principal or any, and this operation or any — four disjoint buckets. Inside each
/// bucket a second level is (key, place, argument): a rule that lists keys or labels is filed under each key id and
/// label it names (else under "any key"), under each value of one of its venue, contract, chain id or selector lists or
/// each hour of the week its time window holds through and minute it holds at in an hour it reaches only in part — the shortest — or else of its role list (else under "any place": <see cref="PlacesOf"/>), and — an allow rule
/// with an <c>eq</c>, <c>one-of</c> or <c>in-list</c> condition — under the argument of the one such condition whose values the fewest of its bucket's rules share, and each value
/// it accepts (else under "any argument"); an argument slot of more than <see cref="NestAbove"/> allow rules (rules sharing
/// a value there) is filed again by their other conditions — another such condition, else its range, <c>not-in-list</c>
/// and <c>ne</c> conditions — in a <see cref="Nest"/>, level by level. A decision reads, per bucket, only the slots the request's key id, labels, venue,
/// contract, chain id, selector, roles and argument values can reach, merged in document order without repeats, so a policy of a thousand rules for one
/// principal and operation that differ by key, venue, contract, chain id, selector or an argument's value (a rule per option series) reads only
/// the few that can apply; so do rules that differ by time window (filed by the hours of the week they hold through, and in an hour
/// a window reaches only in part, by minute). The index only skips rules <see cref="Evaluation.RuleMatcher"/> would refuse: an allow rule's
/// <c>eq</c>/<c>one-of</c> condition holds only when the request carries that argument with an equal value
/// (<see cref="PolicyValue"/> equality, the matcher's own). A deny or require-approval rule is filed by the values of its
/// first <c>eq</c>, <c>one-of</c> or <c>in-list</c> condition failing closed (<see cref="FailClosedGroup"/>): for it a
/// missing argument, or for <c>eq</c> and <c>in-list</c> a value of another kind, makes the condition hold, so such a
/// request reads those rules too; a deny or require-approval rule with neither such a condition nor a range condition is
/// filed by its first <c>not-in-list</c> or <c>ne</c> condition (<see cref="NotInGroup"/>: read unless it lists the
/// request's value), and one with a range condition by the interval of its first (<see cref="Ranges"/>: a cap, "deny
/// above X", "approval above Y", read when the number lies in it or the request carries no number for that argument).
/// An allow rule without an <c>eq</c>, <c>one-of</c> or <c>in-list</c> condition is filed by all its range,
/// <c>not-in-list</c> and <c>ne</c> conditions at once (<see cref="ConditionFilter"/>): read only when every one of them
/// holds. Every criterion is still checked per
/// candidate, and the candidates come in the order the first level alone gives (<see cref="ByPrincipalAndOperation"/>),
/// so decisions are the same (<c>RuleIndexTests</c> compares the two on random policies).
/// </summary>
internal sealed class RuleIndex
{
    private enum KeyToken : byte
    {
        AnyKey,
        Key,
        Label,
    }


    private readonly Dictionary<(string? Principal, OperationKind? Operation), Bucket> _buckets;

    public RuleIndex(IReadOnlyList<RuleMatcher> matchers)
    {
        var lists = new Dictionary<(string?, OperationKind?), List<RuleMatcher>>();
        foreach (RuleMatcher matcher in matchers)
        {
            PolicyRule rule = matcher.Rule;
            string?[] principals = rule.Match.Principals.Count == 0 ? [null] : [.. rule.Match.Principals.Distinct(StringComparer.Ordinal)];
            OperationKind?[] ops = rule.Match.Operations.Count == 0 ? [null] : [.. rule.Match.Operations.Distinct().Select(o => (OperationKind?)o)];
            foreach (string? p in principals)
            {
                foreach (OperationKind? o in ops)
                {
                    if (!lists.TryGetValue((p, o), out List<RuleMatcher>? list))
                    {
                        lists[(p, o)] = list = [];
                    }

                    list.Add(matcher);
                }
            }
        }

        _buckets = lists.ToDictionary(kv => kv.Key, kv => new Bucket(kv.Value));
    }

    /// <summary>The four first-level buckets of a request, most specific first.</summary>
    private static (string?, OperationKind?)[] Buckets(string principalId, OperationKind operation) =>
        [(principalId, operation), (principalId, null), (null, operation), (null, null)];

    /// <summary>Every rule of the (principal, operation) buckets: the first level alone (the reference the tests compare against).</summary>
    public IEnumerable<RuleMatcher> ByPrincipalAndOperation(string principalId, OperationKind operation)
    {
        foreach ((string?, OperationKind?) key in Buckets(principalId, operation))
        {
            if (_buckets.TryGetValue(key, out Bucket? bucket))
            {
                foreach (RuleMatcher rule in bucket.Matchers)
                {
                    yield return rule;
                }
            }
        }
    }

    /// <summary>
    /// The rules that can match a request by this principal, for this operation, on this key (id and labels), venue and
    /// contract: those of <see cref="ByPrincipalAndOperation"/> whose key/label, venue and contract lists are empty or
    /// name the request's (and whose indexed argument condition can hold), in the same order.
    /// </summary>
    public IEnumerable<RuleMatcher> Candidates(OperationRequest request, DateTimeOffset now)
    {
        DateTime utc = now.UtcDateTime;
        int minute = (HourOfWeek(utc.DayOfWeek, utc.Hour) * 60) + utc.Minute;
        string keyId = request.KeyId;
        IReadOnlyList<string> keyLabels = request.KeyLabels;
        var slots = new List<int[]>(4 + (2 * keyLabels.Count));
        foreach ((string?, OperationKind?) key in Buckets(request.Principal.Id, request.Operation))
        {
            if (!_buckets.TryGetValue(key, out Bucket? bucket))
            {
                continue;
            }

            slots.Clear();
            bucket.Collect(KeyToken.AnyKey, null, request, minute, slots);
            bucket.Collect(KeyToken.Key, keyId, request, minute, slots);
            for (int i = 0; i < keyLabels.Count; i++)
            {
                bucket.Collect(KeyToken.Label, keyLabels[i], request, minute, slots);
            }

            if (slots.Count == 1)
            {
                foreach (int position in slots[0])
                {
                    yield return bucket.Matchers[position];
                }

                continue;
            }

            // Merge the ascending position lists; a rule filed under several reached slots comes once.
            var cursors = new int[slots.Count];
            while (true)
            {
                int next = int.MaxValue;
                for (int s = 0; s < slots.Count; s++)
                {
                    if (cursors[s] < slots[s].Length && slots[s][cursors[s]] < next)
                    {
                        next = slots[s][cursors[s]];
                    }
                }

                if (next == int.MaxValue)
                {
                    break;
                }

                for (int s = 0; s < slots.Count; s++)
                {
                    if (cursors[s] < slots[s].Length && slots[s][cursors[s]] == next)
                    {
                        cursors[s]++;
                    }
                }

                yield return bucket.Matchers[next];
            }
        }
    }

    /// <summary>The match list a rule is filed under besides its keys (<see cref="Place"/>).</summary>
    private enum Where : byte
    {
        /// <summary>None: the rule lists no venue, contract, chain id or selector and no role.</summary>
        Any,
        Venue,
        Contract,
        ChainId,
        Selector,

        /// <summary>An hour of the week (<see cref="HourOfWeek"/>) the rule's time window holds through.</summary>
        Hour,

        /// <summary>A minute of the week (Sunday 00:00 UTC is 0) the window holds at, in an hour it holds through only in part.</summary>
        Minute,
        Role,
    }

    /// <summary>
    /// One value of one match list a rule is filed under (<see cref="PlacesOf"/>): a venue, contract or selector
    /// (<see cref="Text"/>), a chain id, an hour or minute of the week or a role (<see cref="Number"/>); the default is "any".
    /// </summary>
    private readonly record struct Place(Where List, string? Text, long Number)
    {
        public static Place Any => default;
    }

    /// <summary>
    /// The places a rule is filed under: the values of one of its non-empty match lists — venues, contracts, chain ids,
    /// selectors or its time window (the hours of the week it holds through and the minutes it holds at in the hours it
    /// reaches only in part), the one with the fewest values (a window counted by the hours it reaches; the first in that
    /// order on a tie), else roles — or "any". One list only, so a rule costs as many entries as that list has values (at
    /// most 168 hours and 14 × 59 minutes; not the product of its lists); a request reaches "any" and, for each list some
    /// rule of the bucket is filed by, the place of its own value (its hour and its minute of the week at the decision's
    /// time). Sound because a non-empty match list that lacks the request's value (or a request without one), or a window
    /// that does not hold at the decision's minute, fails the rule whatever its effect (<see cref="Evaluation.RuleMatcher"/>:
    /// ordinal strings, the same numbers, the same window arithmetic: <see cref="TimePlacesOf"/>).
    /// </summary>
    private static Place[] PlacesOf(RuleMatch m, TimeWindow? time)
    {
        Place[]? best = null;
        int bestWeight = 0;
        void Consider(Place[] places, int? weighed = null)
        {
            int weight = weighed ?? places.Length;
            if (places.Length > 0 && (best is null || weight < bestWeight))
            {
                (best, bestWeight) = (places, weight);
            }
        }

        Consider([.. m.Venues.Distinct(StringComparer.Ordinal).Select(v => new Place(Where.Venue, v, 0))]);
        Consider([.. m.Contracts.Distinct(StringComparer.Ordinal).Select(c => new Place(Where.Contract, c, 0))]);
        Consider([.. m.ChainIds.Distinct().Select(c => new Place(Where.ChainId, null, c))]);
        Consider([.. m.Selectors.Distinct(StringComparer.Ordinal).Select(s => new Place(Where.Selector, s, 0))]);
        if (time is { } window)
        {
            // Weighed by the hours it reaches (as when windows were filed by hour alone), not by its minute places.
            (Place[] places, int hours) = TimePlacesOf(window);
            if (places.Length == 0)
            {
                // A window that holds at no minute ("24:00" to "00:00"): the rule never matches, whatever its effect; filed nowhere.
                return [];
            }

            Consider(places, hours);
        }

        return best ?? (m.Roles.Count > 0 ? [.. m.Roles.Distinct().Select(r => new Place(Where.Role, null, (long)r))] : [Place.Any]);
    }

    /// <summary>Sunday 00:00–00:59 UTC is hour 0, Saturday 23:00–23:59 hour 167.</summary>
    private static int HourOfWeek(DayOfWeek day, int hour) => ((int)day * 24) + hour;

    /// <summary>
    /// Where a window is filed: each hour of the week it holds through (<see cref="Where.Hour"/>), and each minute of the
    /// week it holds at in an hour it holds through only in part (<see cref="Where.Minute"/>); and how many hours of the
    /// week it reaches. The minutes are those <see cref="Evaluation.RuleMatcher"/> holds it at: on each of its days from
    /// <c>from</c> to before <c>to</c>, and for a window past midnight from <c>from</c> to midnight and on the next day
    /// before <c>to</c> (the part after midnight belongs to the day it started). A day's window starts and ends in at
    /// most two hours, so a rule costs at most 14 × 59 minute places beside its hours.
    /// </summary>
    private static (Place[] Places, int Hours) TimePlacesOf(TimeWindow t)
    {
        const int Week = 7 * 1440;
        const ulong WholeHour = (1UL << 60) - 1;

        // Per hour of the week, the minutes the window holds at (bit m: minute m of the hour).
        Span<ulong> held = stackalloc ulong[7 * 24];
        held.Clear();
        static void Hold(Span<ulong> held, int from, int to)
        {
            for (int minute = from; minute < to;)
            {
                int hour = minute / 60;
                int end = Math.Min(to, (hour + 1) * 60);
                int first = minute - (hour * 60), count = end - minute;
                held[hour] |= ((1UL << count) - 1) << first;
                minute = end;
            }
        }

        foreach (DayOfWeek day in t.Days.Distinct())
        {
            int midnight = (int)day * 1440;
            if (t.FromMinute < t.ToMinute)
            {
                Hold(held, midnight + t.FromMinute, midnight + t.ToMinute);
            }
            else
            {
                Hold(held, midnight + t.FromMinute, midnight + 1440);
                Hold(held, (midnight + 1440) % Week, ((midnight + 1440) % Week) + t.ToMinute);
            }
        }

        var places = new List<Place>();
        int hours = 0;
        for (int hour = 0; hour < held.Length; hour++)
        {
            if (held[hour] == WholeHour)
            {
                places.Add(new Place(Where.Hour, null, hour));
            }
            else
            {
                for (ulong bits = held[hour]; bits != 0; bits &= bits - 1)
                {
                    places.Add(new Place(Where.Minute, null, (hour * 60) + System.Numerics.BitOperations.TrailingZeroCount(bits)));
                }
            }

            hours += held[hour] != 0 ? 1 : 0;
        }

        return ([.. places], hours);
    }

    /// <summary>
    /// A slot of a bucket: key token, place, and argument name and value (null name: any argument); fail-closed slots
    /// (deny and require-approval rules by value) apart from allow rules'.
    /// </summary>
    private readonly record struct Slot(KeyToken Kind, string? Key, Place Place, string? Arg, PolicyValue Value, bool FailClosed = false);

    /// <summary>
    /// Where a group of rules filed by one argument is (a key token, a place, the argument): the deny and require-approval
    /// rules filed by its values (<see cref="FailClosedGroup"/>), and the rules filed by the values a "not in" or "not
    /// equal" condition refuses (<see cref="NotInGroup"/>).
    /// </summary>
    private readonly record struct GroupSlot(KeyToken Kind, string? Key, Place Place, string Arg);

    /// <summary>
    /// The deny and require-approval rules filed under one argument's values: all of them (read when the request lacks the
    /// argument) and, by kind, those whose condition holds for any value not of that kind (read when the request's value
    /// is of another kind).
    /// </summary>
    private sealed record FailClosedGroup(int[] All, (PolicyValueKind Kind, int[] Positions)[] OnlyKind)
    {
        /// <summary>The group of the rules filed under one slot (positions ascending), each with its <c>OnlyKind</c>.</summary>
        public static FailClosedGroup Of(List<(int Position, PolicyValueKind? OnlyKind)> rules) => new(
            [.. rules.Select(r => r.Position).Distinct().Order()],
            [.. rules.Where(r => r.OnlyKind is not null).GroupBy(r => r.OnlyKind!.Value).Select(g => (g.Key, g.Select(r => r.Position).Distinct().Order().ToArray()))]);
    }

    /// <summary>
    /// The deny and require-approval rules filed under one argument by a <c>not-in-list</c> or <c>ne</c> condition, which
    /// holds for every value but those it lists (an address in the list; the <c>ne</c> value) and, failing closed, when
    /// the argument is missing or of another kind: all of them, and for each listed value the rules listing it — the ones
    /// a request with that value leaves out (a value of another kind is never listed: it leaves none out). An allowlist
    /// rule ("deny transfers to anyone outside these") costs a lookup, not a match, for a listed address.
    /// </summary>
    private sealed record NotInGroup(int[] All, Dictionary<PolicyValue, int[]> Listing)
    {
        /// <summary>The group of the rules filed under one slot (positions ascending), each with its list.</summary>
        public static NotInGroup Of(List<(int Position, PolicyValue[] Listed)> rules)
        {
            var listing = new Dictionary<PolicyValue, List<int>>();
            foreach ((int position, PolicyValue[] listed) in rules)
            {
                foreach (PolicyValue address in listed)
                {
                    if (!listing.TryGetValue(address, out List<int>? positions))
                    {
                        listing[address] = positions = [];
                    }

                    positions.Add(position);
                }
            }

            return new NotInGroup([.. rules.Select(r => r.Position).Distinct().Order()],
                listing.ToDictionary(kv => kv.Key, kv => kv.Value.Distinct().Order().ToArray()));
        }

        /// <summary>The rules whose condition holds for <paramref name="value"/> (failing closed): all but those listing it.</summary>
        public int[] Holding(PolicyValue value)
        {
            int[] from = All;
            if (!Listing.TryGetValue(value, out int[]? listed))
            {
                return from;
            }

            if (listed.Length == from.Length)
            {
                return []; // every list holds it: no rule of the group can match
            }

            // Both ascending, listed within from: from minus listed.
            var holding = new int[from.Length - listed.Length];
            int n = 0, j = 0;
            foreach (int position in from)
            {
                while (j < listed.Length && listed[j] < position)
                {
                    j++;
                }

                if (j == listed.Length || listed[j] != position)
                {
                    holding[n++] = position;
                }
            }

            return holding;
        }
    }

    /// <summary>
    /// The argument and the values of a deny or require-approval rule's first <c>not-in-list</c> or <c>ne</c> condition
    /// (<see cref="NotInGroup"/>): failing closed, it holds for every value but those it lists. Null without one, and for
    /// allow rules (a <see cref="ConditionFilter"/> files theirs). Used only for rules no other guard files
    /// (<see cref="FailClosedValueGuard"/>, <see cref="RangeGuard"/>).
    /// </summary>
    private static (string Arg, PolicyValue[] Listed)? NotInGuard(PolicyRule rule)
    {
        if (rule.Effect == Effect.Allow)
        {
            return null;
        }

        foreach (Condition c in rule.Conditions)
        {
            switch (c.Op)
            {
                case ConditionOperator.NotInList:
                    return (c.Arg, [.. c.Values.Distinct()]);
                case ConditionOperator.Ne when c.Value is { } v:
                    return (c.Arg, [v]);
            }
        }

        return null;
    }

    /// <summary>
    /// Every <c>eq</c>, <c>one-of</c> and <c>in-list</c> condition of an allow rule, as the argument and the values it
    /// accepts (in-list: addresses, found only by an address value); none for other rules. The rule matches only when each
    /// of them holds, so it may be filed by any one of them.
    /// </summary>
    private static IEnumerable<(int Condition, string Arg, PolicyValue[] Values)> ArgumentGuards(PolicyRule rule)
    {
        if (rule.Effect != Effect.Allow)
        {
            yield break;
        }

        for (int i = 0; i < rule.Conditions.Count; i++)
        {
            Condition c = rule.Conditions[i];
            if (c.Op == ConditionOperator.Eq && c.Value is { } v)
            {
                yield return (i, c.Arg, [v]);
            }
            else if (c.Op is ConditionOperator.OneOf or ConditionOperator.InList)
            {
                yield return (i, c.Arg, [.. c.Values.Distinct()]);
            }
        }
    }

    /// <summary>
    /// The values a deny or require-approval rule's first <c>eq</c>, <c>one-of</c> or <c>in-list</c> condition holds for,
    /// failing closed as <see cref="Evaluation.RuleMatcher"/> has it: the condition also holds when the argument is
    /// missing, and — for <c>eq</c> and <c>in-list</c> — when the request's value is of another kind than
    /// <c>OnlyKind</c> (the <c>eq</c> value's kind; an address). Null for allow rules (<see cref="ArgumentGuards"/>) and
    /// rules without such a condition.
    /// </summary>
    private static (string Arg, PolicyValue[] Values, PolicyValueKind? OnlyKind)? FailClosedValueGuard(PolicyRule rule)
    {
        if (rule.Effect == Effect.Allow)
        {
            return null;
        }

        foreach (Condition c in rule.Conditions)
        {
            switch (c.Op)
            {
                case ConditionOperator.Eq when c.Value is { } v:
                    return (c.Arg, [v], v.Kind);
                case ConditionOperator.OneOf:
                    return (c.Arg, [.. c.Values.Distinct()], null);
                case ConditionOperator.InList:
                    return (c.Arg, [.. c.Values.Distinct()], PolicyValueKind.Address);
            }
        }

        return null;
    }

    /// <summary>
    /// The interval of numbers a rule's first range condition (<c>lt</c>, <c>lte</c>, <c>gt</c>, <c>gte</c>,
    /// <c>between</c>) holds, for an allow rule without an <c>eq</c>/<c>one-of</c> condition (which is then filed by a
    /// <see cref="ConditionFilter"/>) and for every deny and require-approval rule. Null bounds are unbounded. For an allow rule the condition holds only for a number argument
    /// inside the interval; for the others it also holds when the argument is missing or not a number (fail closed:
    /// <see cref="Evaluation.RuleMatcher"/>), so such a request reads every rule filed that way.
    /// </summary>
    private static (string Arg, Interval Range)? RangeGuard(PolicyRule rule)
    {
        if (rule.Effect == Effect.Allow && ArgumentGuards(rule).Any())
        {
            return null;
        }

        foreach (Condition c in rule.Conditions)
        {
            if (RangeOf(c) is { } r)
            {
                return (c.Arg, r);
            }
        }

        return null;
    }

    /// <summary>The numbers a range condition (<c>lt</c>, <c>lte</c>, <c>gt</c>, <c>gte</c>, <c>between</c>) holds for; null for other conditions.</summary>
    private static Interval? RangeOf(Condition c) => c.Op switch
    {
        ConditionOperator.Lt => new Interval(null, false, c.Value!.Value.Number, false),
        ConditionOperator.Lte => new Interval(null, false, c.Value!.Value.Number, true),
        ConditionOperator.Gt => new Interval(c.Value!.Value.Number, false, null, false),
        ConditionOperator.Gte => new Interval(c.Value!.Value.Number, true, null, false),
        ConditionOperator.Between => new Interval(c.Min!.Value, true, c.Max!.Value, true),
        _ => null,
    };

    /// <summary>Whether an allow rule's condition is one a <see cref="ConditionFilter"/> files: a range, <c>not-in-list</c> or <c>ne</c>.</summary>
    private static bool Filters(Condition c) => RangeOf(c) is not null || c.Op is ConditionOperator.NotInList || (c.Op is ConditionOperator.Ne && c.Value is not null);

    /// <summary>How many of <paramref name="guards"/> accept each (argument, value): a rule's guard counts once per value it lists.</summary>
    private static Dictionary<(string, PolicyValue), int> ValueSharing(IEnumerable<(int Condition, string Arg, PolicyValue[] Values)> guards)
    {
        var sharing = new Dictionary<(string, PolicyValue), int>();
        foreach ((_, string arg, PolicyValue[] values) in guards)
        {
            foreach (PolicyValue v in values)
            {
                sharing[(arg, v)] = sharing.GetValueOrDefault((arg, v)) + 1;
            }
        }

        return sharing;
    }

    /// <summary>
    /// Of a rule's <paramref name="guards"/> (each counted in <paramref name="sharing"/>), the one whose values the fewest
    /// guards share, summed over its values (the first on a tie), and that sum; null and <see cref="long.MaxValue"/> without one.
    /// </summary>
    private static ((int Condition, string Arg, PolicyValue[] Values)? Guard, long Shared) MostSelective(
        IEnumerable<(int Condition, string Arg, PolicyValue[] Values)> guards, Dictionary<(string, PolicyValue), int> sharing)
    {
        (int Condition, string Arg, PolicyValue[] Values)? best = null;
        long fewest = long.MaxValue;
        foreach ((int condition, string arg, PolicyValue[] values) in guards)
        {
            long shared = values.Sum(v => (long)sharing[(arg, v)]);
            if (shared < fewest)
            {
                (best, fewest) = ((condition, arg, values), shared);
            }
        }

        return (best, fewest);
    }

    /// <summary>Numbers from <see cref="Low"/> to <see cref="High"/> (null: unbounded), each end included or not.</summary>
    private readonly record struct Interval(decimal? Low, bool LowIncluded, decimal? High, bool HighIncluded);

    /// <summary>
    /// A range slot: the deny and require-approval rules filed under one (key token, place, argument) by the interval of
    /// their first range condition, which a request without a number for the argument reads all of (fail closed). Allow
    /// rules filed by interval are in a <see cref="ConditionFilter"/> per (key token, place): <see cref="FilterSlot"/>.
    /// </summary>
    private readonly record struct RangeSlot(KeyToken Kind, string? Key, Place Place, string Arg);

    /// <summary>Where the allow rules filed by interval are (<see cref="ConditionFilter"/>): a key token and a place.</summary>
    private readonly record struct FilterSlot(KeyToken Kind, string? Key, Place Place);

    /// <summary>
    /// Rules by interval of one argument. Intervals bounded on one side only (<c>lt</c>, <c>lte</c>, <c>gt</c>,
    /// <c>gte</c>) are kept sorted by their bound: the rules holding a number are a run from one end, found by binary
    /// search and read in time proportional to how many hold it, however nested (a floor per tier). Intervals bounded on
    /// both sides (<c>between</c>) are kept in a static interval tree (an augmented binary search tree laid out over the
    /// intervals sorted by where they start; each subtree knows the furthest end in it, as in Cormen et al.,
    /// "Introduction to Algorithms", §14.3): a lookup visits the intervals that start at or before the number and prunes
    /// every subtree whose furthest end lies before it, so it costs O(log n) per interval that holds the number, whatever
    /// the intervals' nesting (a thousand bands each containing the next: one candidate), in linear space.
    /// </summary>
    private sealed class Ranges
    {
        private readonly Band[] _bands;

        /// <summary>For the subtree of <see cref="_bands"/>[lo, hi) rooted at its middle: the furthest end in it.</summary>
        private readonly End[] _furthest;

        private readonly (decimal Bound, bool Included, int Position)[] _floors;
        private readonly (decimal Bound, bool Included, int Position)[] _ceilings;

        /// <summary>Every rule filed here (positions in document order).</summary>
        public int[] All { get; }

        /// <summary>
        /// An end of an interval, ordered by where it lets numbers in: a bound, and at equal bounds an included one
        /// after an excluded one (it also holds the bound itself).
        /// </summary>
        private readonly record struct End(decimal Bound, bool Included) : IComparable<End>
        {
            public int CompareTo(End other) => Bound != other.Bound ? Bound.CompareTo(other.Bound) : Included.CompareTo(other.Included);

            /// <summary>Whether an interval ending here reaches <paramref name="value"/> (holds it, as far as its high end goes).</summary>
            public bool Reaches(decimal value) => Bound > value || (Bound == value && Included);
        }

        /// <summary>A two-sided interval and the document position of its rule.</summary>
        private readonly record struct Band(decimal Low, bool LowIncluded, End High, int Position)
        {
            /// <summary>Whether the band starts at or before <paramref name="value"/> (holds it, as far as its low end goes).</summary>
            public bool StartsBy(decimal value) => Low < value || (Low == value && LowIncluded);
        }

        private Ranges(Band[] bands, End[] furthest, (decimal, bool, int)[] floors, (decimal, bool, int)[] ceilings, int[] all)
        {
            All = all;
            _bands = bands;
            _furthest = furthest;
            _floors = floors;
            _ceilings = ceilings;
        }

        /// <summary>The index of <paramref name="rules"/>.</summary>
        public static Ranges Build(List<(int Position, Interval Range)> rules)
        {
            (decimal, bool, int)[] floors = [.. rules.Where(r => r.Range.High is null && r.Range.Low is not null)
                .Select(r => (r.Range.Low!.Value, r.Range.LowIncluded, r.Position)).OrderBy(f => f.Item1)];
            (decimal, bool, int)[] ceilings = [.. rules.Where(r => r.Range.Low is null && r.Range.High is not null)
                .Select(r => (r.Range.High!.Value, r.Range.HighIncluded, r.Position)).OrderByDescending(c => c.Item1)];

            // Sorted so that "starts at or before x" holds for a prefix: by low bound, and at equal bounds an included
            // low end first (it holds the bound, an excluded one does not).
            Band[] bands = [.. rules.Where(r => r.Range.Low is not null && r.Range.High is not null)
                .Select(r => new Band(r.Range.Low!.Value, r.Range.LowIncluded, new End(r.Range.High!.Value, r.Range.HighIncluded), r.Position))
                .OrderBy(b => b.Low).ThenBy(b => b.LowIncluded ? 0 : 1).ThenBy(b => b.Position)];
            var furthest = new End[bands.Length];
            if (bands.Length > 0)
            {
                Augment(bands, furthest, 0, bands.Length);
            }

            return new Ranges(bands, furthest, floors, ceilings, [.. rules.Select(r => r.Position).Distinct().Order()]);
        }

        /// <summary>Fills <paramref name="furthest"/> for the subtree over [lo, hi) and returns its furthest end (lo &lt; hi).</summary>
        private static End Augment(Band[] bands, End[] furthest, int lo, int hi)
        {
            int mid = (lo + hi) >>> 1;
            End max = bands[mid].High;
            if (lo < mid && Augment(bands, furthest, lo, mid) is var left && left.CompareTo(max) > 0)
            {
                max = left;
            }

            if (mid + 1 < hi && Augment(bands, furthest, mid + 1, hi) is var right && right.CompareTo(max) > 0)
            {
                max = right;
            }

            furthest[mid] = max;
            return max;
        }

        /// <summary>The rules (positions in document order) whose interval holds <paramref name="value"/>.</summary>
        /// <remarks>
        /// The positions found are marked in a bit set over the positions filed here and read out in order: no list to
        /// grow and sort when most of a thousand caps hold the number.
        /// </remarks>
        public int[] Holding(decimal value)
        {
            if (All.Length == 0)
            {
                return [];
            }

            int words = (All[^1] >> 6) + 1;
            Span<ulong> held = words <= 256 ? stackalloc ulong[words] : new ulong[words];
            held.Clear();
            int count = 0;
            if (_bands.Length > 0)
            {
                // The bands that start at or before the value are a prefix [0, starting); of those, report the ones whose
                // high end reaches it.
                int lo = 0, hi = _bands.Length;
                while (lo < hi)
                {
                    int mid = (lo + hi) >>> 1;
                    if (_bands[mid].StartsBy(value))
                    {
                        lo = mid + 1;
                    }
                    else
                    {
                        hi = mid;
                    }
                }

                Stab(0, _bands.Length, lo, value, held, ref count);
            }

            MarkReached(_floors, value, below: true, held, ref count);
            MarkReached(_ceilings, value, below: false, held, ref count);

            var positions = new int[count];
            int next = 0;
            for (int w = 0; w < held.Length; w++)
            {
                for (ulong bits = held[w]; bits != 0; bits &= bits - 1)
                {
                    positions[next++] = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits);
                }
            }

            return positions;
        }

        /// <summary>
        /// Marks the floors (<paramref name="below"/>: sorted by bound, ascending) or ceilings (descending) that hold
        /// <paramref name="value"/>: those strictly on its side, a prefix found by binary search, and of those at the
        /// value itself the included ones.
        /// </summary>
        private static void MarkReached((decimal Bound, bool Included, int Position)[] ends, decimal value, bool below, Span<ulong> held, ref int count)
        {
            int strictly = Prefix(ends, value, below, orEqual: false);
            int reached = Prefix(ends, value, below, orEqual: true);
            for (int i = 0; i < reached; i++)
            {
                if (i < strictly || ends[i].Included)
                {
                    Mark(held, ends[i].Position, ref count);
                }
            }
        }

        /// <summary>How many of <paramref name="ends"/> lie strictly on the value's side (below it for floors, above for ceilings), or on it too.</summary>
        private static int Prefix((decimal Bound, bool Included, int Position)[] ends, decimal value, bool below, bool orEqual)
        {
            int lo = 0, hi = ends.Length;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                int c = ends[mid].Bound.CompareTo(value);
                bool inside = (below ? c < 0 : c > 0) || (orEqual && c == 0);
                if (inside)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            return lo;
        }

        private static void Mark(Span<ulong> held, int position, ref int count)
        {
            ulong bit = 1UL << (position & 63);
            if ((held[position >> 6] & bit) == 0)
            {
                held[position >> 6] |= bit;
                count++;
            }
        }

        /// <summary>Marks the bands of the subtree over [lo, hi) below index <paramref name="starting"/> whose high end reaches <paramref name="value"/>.</summary>
        private void Stab(int lo, int hi, int starting, decimal value, Span<ulong> into, ref int count)
        {
            if (lo >= hi || lo >= starting)
            {
                return;
            }

            int mid = (lo + hi) >>> 1;
            if (!_furthest[mid].Reaches(value))
            {
                return; // no band in this subtree reaches the value
            }

            Stab(lo, mid, starting, value, into, ref count);
            if (mid < starting && _bands[mid].High.Reaches(value))
            {
                Mark(into, _bands[mid].Position, ref count);
            }

            Stab(mid + 1, hi, starting, value, into, ref count);
        }
    }

    /// <summary>
    /// The allow rules of one (key token, place) — or of one nest — that are filed by interval, told apart by every range
    /// condition they have (<c>lt</c>, <c>lte</c>, <c>gt</c>, <c>gte</c>, <c>between</c>) on every argument at once: a
    /// request reads exactly the rules all of whose range conditions hold its numbers. Per argument, a rule's conditions
    /// on it are one interval (their intersection: an allow rule matches only if each holds); the rules whose low end a
    /// number reaches are a prefix of the low ends sorted ascending, and those whose high end reaches it a prefix of the
    /// high ends sorted descending (rules without that end, or without a condition on the argument, pass that side), so
    /// each side is a set read from a bit set kept for every <c>stride</c>-th prefix plus at most <c>stride</c> − 1 more
    /// rules marked, and the candidates are the intersection over sides and arguments (rules without a condition on an
    /// argument the request lacks or carries as another kind than a number; the others hold only for a number). A
    /// thousand rules each with a cap of its own that every amount holds, differing by a band of another argument, read
    /// the ones whose band holds the request's value — not all thousand, as filing each by one condition alone did — in
    /// time proportional to the rules over 64 per argument, whatever the intervals' nesting or overlap.
    /// </summary>
    /// <remarks>
    /// Sound for the reason the range level was: <see cref="Evaluation.RuleMatcher"/> holds an allow rule's range condition
    /// only for a number argument inside the interval (the same decimal comparison), so a rule left out here fails one of
    /// its conditions. The bit sets cost (rules ⁄ stride + 1) × (rules ⁄ 64) words per side and argument, the stride 64
    /// until that passes <see cref="Budget"/> words, then longer.
    /// </remarks>
    private sealed class ConditionFilter
    {
        /// <summary>Words of prefix bit sets one side may keep before its stride grows past 64.</summary>
        private const int Budget = 1 << 15;

        /// <summary>Bucket (or nest) positions of the rules filtered here, ascending: bit <c>i</c> stands for <c>_positions[i]</c>.</summary>
        private readonly int[] _positions;

        private readonly ulong[] _all;

        private readonly Argument[] _args;

        private readonly Exclusion[] _exclusions;

        /// <summary>One argument: both sides of its intervals, and the rules without a condition on it.</summary>
        private sealed record Argument(string Name, Side Low, Side High, ulong[] Free);

        /// <summary>
        /// One argument's <c>not-in-list</c> and <c>ne</c> conditions: the rules without one (<c>Free</c>), the rules whose
        /// every such condition on it needs a value of one kind (an address for a list; the value's kind for <c>ne</c>), by
        /// kind, and the rules (local indexes) listing each value — as a bit set (<c>Listed</c>) for a value more than 64
        /// rules list, so a counterparty a thousand lists hold costs a pass over the words, not a thousand marks. An allow
        /// rule's such condition holds only for a given value of the kind it needs that it does not list
        /// (<see cref="Evaluation.RuleMatcher"/>).
        /// </summary>
        private sealed record Exclusion(string Name, ulong[] Free, Dictionary<PolicyValueKind, ulong[]> OfKind, Dictionary<PolicyValue, int[]> Listing, Dictionary<PolicyValue, ulong[]> Listed);

        private ConditionFilter(int[] positions, ulong[] all, Argument[] args, Exclusion[] exclusions)
        {
            _positions = positions;
            _all = all;
            _args = args;
            _exclusions = exclusions;
        }

        /// <summary>
        /// The filter of the rules of <paramref name="rules"/> at <paramref name="positions"/> (each with at least one range
        /// condition), by all their range conditions.
        /// </summary>
        public static ConditionFilter Build(PolicyRule[] rules, IEnumerable<int> positions)
        {
            int[] filed = [.. positions.Distinct().Order()];
            int words = (filed.Length + 63) >> 6;
            var all = new ulong[words];
            for (int i = 0; i < filed.Length; i++)
            {
                all[i >> 6] |= 1UL << (i & 63);
            }

            // Per argument, each rule's interval: the intersection of its range conditions on it.
            var byArg = new SortedDictionary<string, Dictionary<int, Interval>>(StringComparer.Ordinal);
            for (int i = 0; i < filed.Length; i++)
            {
                foreach (Condition c in rules[filed[i]].Conditions)
                {
                    if (RangeOf(c) is not { } range)
                    {
                        continue;
                    }

                    if (!byArg.TryGetValue(c.Arg, out Dictionary<int, Interval>? intervals))
                    {
                        byArg[c.Arg] = intervals = [];
                    }

                    intervals[i] = intervals.TryGetValue(i, out Interval before) ? Intersect(before, range) : range;
                }
            }

            var args = new List<Argument>();
            foreach ((string arg, Dictionary<int, Interval> intervals) in byArg)
            {
                ulong[] free = [.. all];
                foreach (int i in intervals.Keys)
                {
                    free[i >> 6] &= ~(1UL << (i & 63));
                }

                Side low = Side.Build([.. intervals.Where(kv => kv.Value.Low is not null).Select(kv => (kv.Value.Low!.Value, kv.Value.LowIncluded, kv.Key))], all, lowEnds: true);
                Side high = Side.Build([.. intervals.Where(kv => kv.Value.High is not null).Select(kv => (kv.Value.High!.Value, kv.Value.HighIncluded, kv.Key))], all, lowEnds: false);
                args.Add(new Argument(arg, low, high, free));
            }

            return new ConditionFilter(filed, all, [.. args], Exclusions(rules, filed, all));
        }

        /// <summary>The <c>not-in-list</c> and <c>ne</c> conditions of the rules at <paramref name="filed"/>, per argument.</summary>
        private static Exclusion[] Exclusions(PolicyRule[] rules, int[] filed, ulong[] all)
        {
            // Per argument and rule: the kind its conditions need (null: two kinds, never holds) and the values they list.
            var byArg = new SortedDictionary<string, Dictionary<int, (PolicyValueKind? Kind, HashSet<PolicyValue> Listed)>>(StringComparer.Ordinal);
            for (int i = 0; i < filed.Length; i++)
            {
                foreach (Condition c in rules[filed[i]].Conditions)
                {
                    (PolicyValueKind kind, IEnumerable<PolicyValue> listed) = c.Op switch
                    {
                        ConditionOperator.NotInList => (PolicyValueKind.Address, c.Values),
                        ConditionOperator.Ne when c.Value is { } v => (v.Kind, [v]),
                        _ => (default(PolicyValueKind), null!),
                    };
                    if (listed is null)
                    {
                        continue;
                    }

                    if (!byArg.TryGetValue(c.Arg, out Dictionary<int, (PolicyValueKind?, HashSet<PolicyValue>)>? ofRule))
                    {
                        byArg[c.Arg] = ofRule = [];
                    }

                    (PolicyValueKind? Kind, HashSet<PolicyValue> Listed) entry = ofRule.TryGetValue(i, out var before)
                        ? (before.Item1 == kind ? kind : null, before.Item2)
                        : (kind, []);
                    entry.Listed.UnionWith(listed);
                    ofRule[i] = entry;
                }
            }

            var exclusions = new List<Exclusion>();
            foreach ((string arg, Dictionary<int, (PolicyValueKind? Kind, HashSet<PolicyValue> Listed)> ofRule) in byArg)
            {
                ulong[] free = [.. all];
                var ofKind = new Dictionary<PolicyValueKind, ulong[]>();
                var listing = new Dictionary<PolicyValue, List<int>>();
                foreach ((int i, (PolicyValueKind? kind, HashSet<PolicyValue> listed)) in ofRule.OrderBy(kv => kv.Key))
                {
                    free[i >> 6] &= ~(1UL << (i & 63));
                    if (kind is { } k)
                    {
                        if (!ofKind.TryGetValue(k, out ulong[]? bits))
                        {
                            ofKind[k] = bits = new ulong[all.Length];
                        }

                        bits[i >> 6] |= 1UL << (i & 63);
                    }

                    foreach (PolicyValue v in listed)
                    {
                        if (!listing.TryGetValue(v, out List<int>? rulesListing))
                        {
                            listing[v] = rulesListing = [];
                        }

                        rulesListing.Add(i);
                    }
                }

                var widelyListed = new Dictionary<PolicyValue, ulong[]>();
                foreach ((PolicyValue v, List<int> many) in listing.Where(kv => kv.Value.Count > 64))
                {
                    ulong[] bits = widelyListed[v] = new ulong[all.Length];
                    foreach (int i in many)
                    {
                        bits[i >> 6] |= 1UL << (i & 63);
                    }
                }

                exclusions.Add(new Exclusion(arg, free, ofKind,
                    listing.Where(kv => kv.Value.Count <= 64).ToDictionary(kv => kv.Key, kv => kv.Value.ToArray()), widelyListed));
            }

            return [.. exclusions];
        }

        /// <summary>The numbers both intervals hold: the higher low end and the lower high end (at equal bounds, an excluded end is the tighter).</summary>
        private static Interval Intersect(Interval a, Interval b)
        {
            (decimal? low, bool lowIncluded) = (a.Low, b.Low) switch
            {
                (null, _) => (b.Low, b.LowIncluded),
                (_, null) => (a.Low, a.LowIncluded),
                ({ } x, { } y) when x != y => x > y ? (a.Low, a.LowIncluded) : (b.Low, b.LowIncluded),
                _ => (a.Low, a.LowIncluded && b.LowIncluded),
            };
            (decimal? high, bool highIncluded) = (a.High, b.High) switch
            {
                (null, _) => (b.High, b.HighIncluded),
                (_, null) => (a.High, a.HighIncluded),
                ({ } x, { } y) when x != y => x < y ? (a.High, a.HighIncluded) : (b.High, b.HighIncluded),
                _ => (a.High, a.HighIncluded && b.HighIncluded),
            };
            return new Interval(low, lowIncluded, high, highIncluded);
        }

        /// <summary>The positions (ascending) of the rules whose every range condition holds for <paramref name="args"/>; empty if none.</summary>
        public int[] Holding(IReadOnlyDictionary<string, PolicyValue> args)
        {
            int words = _all.Length;
            Span<ulong> held = words <= 128 ? stackalloc ulong[words] : new ulong[words];
            Span<ulong> side = words <= 128 ? stackalloc ulong[words] : new ulong[words];
            _all.CopyTo(held);
            foreach (Argument arg in _args)
            {
                if (args.TryGetValue(arg.Name, out PolicyValue value) && value.Kind == PolicyValueKind.Number)
                {
                    arg.Low.Intersect(value.Number, held, side);
                    arg.High.Intersect(value.Number, held, side);
                }
                else
                {
                    // An allow rule's range condition holds only for a number: the rules without one on this argument remain.
                    And(held, arg.Free);
                }
            }

            foreach (Exclusion exclusion in _exclusions)
            {
                // The rules without such a condition on the argument, and — for a value given — those of its kind not listing it.
                if (args.TryGetValue(exclusion.Name, out PolicyValue value) && exclusion.OfKind.TryGetValue(value.Kind, out ulong[]? ofKind))
                {
                    ofKind.CopyTo(side);
                    if (exclusion.Listing.TryGetValue(value, out int[]? listing))
                    {
                        foreach (int i in listing)
                        {
                            side[i >> 6] &= ~(1UL << (i & 63));
                        }
                    }
                    else if (exclusion.Listed.TryGetValue(value, out ulong[]? listed))
                    {
                        for (int w = 0; w < side.Length; w++)
                        {
                            side[w] &= ~listed[w];
                        }
                    }

                    for (int w = 0; w < side.Length; w++)
                    {
                        side[w] |= exclusion.Free[w];
                    }

                    And(held, side);
                }
                else
                {
                    And(held, exclusion.Free);
                }
            }

            int count = 0;
            foreach (ulong w in held)
            {
                count += System.Numerics.BitOperations.PopCount(w);
            }

            if (count == 0)
            {
                return [];
            }

            var positions = new int[count];
            int next = 0;
            for (int w = 0; w < held.Length; w++)
            {
                for (ulong bits = held[w]; bits != 0; bits &= bits - 1)
                {
                    positions[next++] = _positions[(w << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits)];
                }
            }

            return positions;
        }

        private static void And(Span<ulong> held, ReadOnlySpan<ulong> with)
        {
            for (int w = 0; w < held.Length; w++)
            {
                held[w] &= with[w];
            }
        }

        /// <summary>
        /// One side of one argument's intervals: the ends sorted in the order they let numbers in (low ends ascending, high
        /// ends descending; at equal bounds an included end first, as it also lets the bound itself in), so the ends a
        /// number reaches are a prefix; and the set of rules each <see cref="_stride"/>-th prefix lets in, with every rule
        /// that has no such end.
        /// </summary>
        private sealed class Side
        {
            private readonly decimal[] _bounds;
            private readonly bool[] _included;
            private readonly int[] _rules;
            private readonly bool _lowEnds;
            private readonly int _stride;
            private readonly ulong[][] _prefixes;

            private Side(decimal[] bounds, bool[] included, int[] rules, bool lowEnds, int stride, ulong[][] prefixes)
            {
                _bounds = bounds;
                _included = included;
                _rules = rules;
                _lowEnds = lowEnds;
                _stride = stride;
                _prefixes = prefixes;
            }

            public static Side Build((decimal Bound, bool Included, int Rule)[] ends, ulong[] all, bool lowEnds)
            {
                (decimal Bound, bool Included, int Rule)[] sorted = lowEnds
                    ? [.. ends.OrderBy(e => e.Bound).ThenBy(e => e.Included ? 0 : 1).ThenBy(e => e.Rule)]
                    : [.. ends.OrderByDescending(e => e.Bound).ThenBy(e => e.Included ? 0 : 1).ThenBy(e => e.Rule)];
                int words = all.Length;
                int stride = 64;
                if ((((long)sorted.Length / 64) + 1) * words > Budget)
                {
                    int kept = Math.Max(2, Budget / Math.Max(1, words));
                    stride = Math.Max(64, (sorted.Length + kept - 2) / (kept - 1));
                }

                ulong[] prefix = [.. all];
                foreach ((_, _, int rule) in sorted)
                {
                    prefix[rule >> 6] &= ~(1UL << (rule & 63)); // a rule with this end is let in only once its end is reached
                }

                var prefixes = new ulong[(sorted.Length / stride) + 1][];
                for (int k = 0; ; k++)
                {
                    if (k % stride == 0)
                    {
                        prefixes[k / stride] = [.. prefix];
                    }

                    if (k == sorted.Length)
                    {
                        break;
                    }

                    prefix[sorted[k].Rule >> 6] |= 1UL << (sorted[k].Rule & 63);
                }

                return new Side([.. sorted.Select(e => e.Bound)], [.. sorted.Select(e => e.Included)], [.. sorted.Select(e => e.Rule)], lowEnds, stride, prefixes);
            }

            /// <summary>Keeps in <paramref name="held"/> only the rules this side lets <paramref name="value"/> in for (<paramref name="scratch"/>: as long, overwritten).</summary>
            public void Intersect(decimal value, Span<ulong> held, Span<ulong> scratch)
            {
                int reached = Reached(value);
                int from = reached / _stride * _stride;
                _prefixes[reached / _stride].CopyTo(scratch);
                for (int k = from; k < reached; k++)
                {
                    scratch[_rules[k] >> 6] |= 1UL << (_rules[k] & 63);
                }

                And(held, scratch);
            }

            /// <summary>How many ends let <paramref name="value"/> in: strictly on its side, or at it and included (a prefix, by binary search).</summary>
            private int Reached(decimal value)
            {
                int lo = 0, hi = _bounds.Length;
                while (lo < hi)
                {
                    int mid = (lo + hi) >>> 1;
                    int c = _bounds[mid].CompareTo(value);
                    if ((_lowEnds ? c < 0 : c > 0) || (c == 0 && _included[mid]))
                    {
                        lo = mid + 1;
                    }
                    else
                    {
                        hi = mid;
                    }
                }

                return lo;
            }
        }
    }

    /// <summary>
    /// An argument slot of more allow rules than this is filed again by the rules' other conditions (<see cref="Nest"/>);
    /// up to this many are read and matched one by one, which costs about as much as the nested level's lookups.
    /// </summary>
    internal const int NestAbove = 8;

    /// <summary>
    /// The allow rules of one argument slot past <see cref="NestAbove"/> rules — all of them accept the request's value of
    /// the argument they are filed by — filed again, each by one more of its conditions (docs/POLICY.md "Decision
    /// latency"): its <c>eq</c>, <c>one-of</c> or <c>in-list</c> condition not used above whose values the fewest rules of
    /// the nest share, unless that one narrows nothing (its values are shared, counted per rule and value, by at least as
    /// many rules as the nest holds) and the rule has a range, <c>not-in-list</c> or <c>ne</c> condition not used above;
    /// else all those conditions (<see cref="ConditionFilter"/>); else none, and it is read whenever the nest is. A
    /// group of more than <see cref="NestAbove"/> rules filed under one value is nested again, to at most
    /// <see cref="MaxDepth"/> levels. Sound for the reason the argument level is: an allow rule matches only if every one of
    /// its conditions holds, and <see cref="Evaluation.RuleMatcher"/> holds an allow rule's <c>eq</c>/<c>one-of</c>/<c>in-list</c>
    /// condition only for an equal value (<see cref="PolicyValue"/> equality), its range condition only for a number
    /// inside the interval and its <c>not-in-list</c>/<c>ne</c> only for a value of its kind it does not list — so a rule
    /// left out here fails whatever its other conditions. Deny and require-approval rules
    /// are never nested (their conditions fail closed: they are filed as the bucket has them).
    /// </summary>
    /// <remarks>
    /// A rule with a <c>one-of</c> or <c>in-list</c> condition is filed under each of its values, so nesting multiplies its
    /// entries: a condition is used in a nest only while the product of the value counts used along the rule's path stays
    /// within <see cref="MaxFanout"/>, so a rule costs at most that many entries under each argument slot it is filed in.
    /// </remarks>
    private sealed class Nest
    {
        private const int MaxDepth = 4;
        private const int MaxFanout = 16;

        /// <summary>A rule of the nest: its position in the bucket, the conditions (indexes) used above, and their values' product.</summary>
        public readonly record struct Entry(int Position, int[] Used, int Fanout);

        /// <summary>The rules not filed again here (no condition left to file them by): read whenever the nest is.</summary>
        private readonly int[] _rest;

        private readonly Dictionary<(string Arg, PolicyValue Value), int[]> _lists;
        private readonly Dictionary<(string Arg, PolicyValue Value), Nest> _nests;

        /// <summary>The arguments some rule of the nest is filed under by value.</summary>
        private readonly string[] _args;

        /// <summary>The rules filed by interval (by all their range conditions), if any.</summary>
        private readonly ConditionFilter? _ranges;

        private Nest(int[] rest, Dictionary<(string Arg, PolicyValue Value), int[]> lists, Dictionary<(string Arg, PolicyValue Value), Nest> nests, ConditionFilter? ranges)
        {
            _rest = rest;
            _lists = lists;
            _nests = nests;
            _args = [.. lists.Keys.Concat(nests.Keys).Select(k => k.Arg).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
            _ranges = ranges;
        }

        /// <summary>The nest of <paramref name="entries"/> (distinct positions of <paramref name="rules"/>), <paramref name="depth"/> levels below the argument slot.</summary>
        public static Nest Build(PolicyRule[] rules, Entry[] entries, int depth)
        {
            // The conditions each rule may still be filed by: value guards within the fan-out, and range conditions.
            IEnumerable<(int Condition, string Arg, PolicyValue[] Values)> Guards(Entry e) =>
                ArgumentGuards(rules[e.Position]).Where(g => !e.Used.Contains(g.Condition) && e.Fanout * g.Values.Length <= MaxFanout);

            Dictionary<(string, PolicyValue), int> sharing = ValueSharing(entries.SelectMany(Guards));
            var byValue = new Dictionary<(string, PolicyValue), List<Entry>>();
            var byRange = new List<int>();
            var rest = new List<int>();
            foreach (Entry e in entries)
            {
                ((int Condition, string Arg, PolicyValue[] Values)? best, long fewest) = MostSelective(Guards(e), sharing);

                IReadOnlyList<Condition> conditions = rules[e.Position].Conditions;
                bool ranged = Enumerable.Range(0, conditions.Count).Any(c => !e.Used.Contains(c) && Filters(conditions[c]));
                if (best is { } g && (fewest < entries.Length || !ranged))
                {
                    var next = new Entry(e.Position, [.. e.Used, g.Condition], e.Fanout * g.Values.Length);
                    foreach (PolicyValue v in g.Values)
                    {
                        if (!byValue.TryGetValue((g.Arg, v), out List<Entry>? list))
                        {
                            byValue[(g.Arg, v)] = list = [];
                        }

                        list.Add(next);
                    }
                }
                else if (ranged)
                {
                    byRange.Add(e.Position);
                }
                else
                {
                    rest.Add(e.Position);
                }
            }

            var lists = new Dictionary<(string, PolicyValue), int[]>();
            var nests = new Dictionary<(string, PolicyValue), Nest>();
            foreach (((string, PolicyValue) at, List<Entry> group) in byValue)
            {
                if (group.Count > NestAbove && depth < MaxDepth)
                {
                    nests[at] = Build(rules, [.. group], depth + 1);
                }
                else
                {
                    lists[at] = [.. group.Select(e => e.Position).Order()];
                }
            }

            return new Nest([.. rest.Order()], lists, nests, byRange.Count > 0 ? ConditionFilter.Build(rules, byRange) : null);
        }

        /// <summary>Adds the position lists (ascending) of the rules of the nest whose filed condition can hold for <paramref name="args"/>.</summary>
        public void Collect(IReadOnlyDictionary<string, PolicyValue> args, List<int[]> into)
        {
            if (_rest.Length > 0)
            {
                into.Add(_rest);
            }

            foreach (string arg in _args)
            {
                if (!args.TryGetValue(arg, out PolicyValue value))
                {
                    continue;
                }

                if (_lists.TryGetValue((arg, value), out int[]? positions))
                {
                    into.Add(positions);
                }
                else if (_nests.TryGetValue((arg, value), out Nest? nest))
                {
                    nest.Collect(args, into);
                }
            }

            // An allow rule's range condition holds only for a number inside it (a missing or other argument: none).
            if (_ranges?.Holding(args) is { Length: > 0 } holding)
            {
                into.Add(holding);
            }
        }
    }

    /// <summary>One (principal, operation) bucket: its rules in document order and their positions by slot.</summary>
    private sealed class Bucket
    {
        private readonly Dictionary<Slot, int[]> _slots;

        /// <summary>The argument slots of more than <see cref="NestAbove"/> allow rules, filed again by another of their conditions.</summary>
        private readonly Dictionary<Slot, Nest> _nested;

        /// <summary>The arguments some rule of this bucket is filed under (few: usually none or one).</summary>
        private readonly string[] _args;

        /// <summary>The deny and require-approval rules filed by interval.</summary>
        private readonly Dictionary<RangeSlot, Ranges> _ranges = [];

        /// <summary>The allow rules filed by interval, by all their range conditions.</summary>
        private readonly Dictionary<FilterSlot, ConditionFilter> _filters = [];

        private readonly Dictionary<GroupSlot, FailClosedGroup> _failClosed;

        /// <summary>The arguments some deny or require-approval rule of this bucket is filed under by value.</summary>
        private readonly string[] _failClosedArgs;

        /// <summary>Rules filed by a "not in" list or "not equal": deny and require-approval rules (failing closed) apart from allow rules.</summary>
        private readonly Dictionary<GroupSlot, NotInGroup> _notIn;

        /// <summary>The arguments some deny or require-approval rule of this bucket is filed under by a "not in" list.</summary>
        private readonly string[] _notInArgs;

        /// <summary>The arguments some rule of this bucket is filed under by interval.</summary>
        private readonly string[] _rangeArgs;

        public Bucket(List<RuleMatcher> matchers)
        {
            Matchers = [.. matchers];
            List<PolicyRule> rules = [.. matchers.Select(m => m.Rule)];
            Rules = [.. rules];
            var slots = new Dictionary<Slot, List<int>>();
            var lists = new HashSet<Where>();
            var roles = new HashSet<Role>();
            var args = new HashSet<string>(StringComparer.Ordinal);
            var ranged = new Dictionary<RangeSlot, List<(int Position, Interval Range)>>();
            var filters = new Dictionary<FilterSlot, List<int>>();
            var failClosed = new Dictionary<GroupSlot, List<(int, PolicyValueKind?)>>();
            var notIn = new Dictionary<GroupSlot, List<(int, PolicyValue[])>>();

            // The condition each allow rule filed by value is filed by (its index in the rule), for the nested levels.
            var filedBy = new int[Rules.Length];
            void File(Slot slot, int position)
            {
                if (!slots.TryGetValue(slot, out List<int>? list))
                {
                    slots[slot] = list = [];
                }

                list.Add(position);
            }

            // How many of this bucket's allow rules accept each (argument, value) by one of their conditions: a rule is filed
            // by its condition whose values the fewest rules share (the first such on a tie), so rules that share a first
            // condition and differ by a later one are still told apart.
            Dictionary<(string, PolicyValue), int> sharing = ValueSharing(Rules.SelectMany(ArgumentGuards));

            for (int i = 0; i < Rules.Length; i++)
            {
                RuleMatch m = Rules[i].Match;
                (KeyToken, string?)[] keys = m.Keys.Count == 0 && m.Labels.Count == 0
                    ? [(KeyToken.AnyKey, null)]
                    : [.. m.Keys.Distinct(StringComparer.Ordinal).Select(k => (KeyToken.Key, (string?)k)), .. m.Labels.Distinct(StringComparer.Ordinal).Select(l => (KeyToken.Label, (string?)l))];
                Place[] places = PlacesOf(m, Rules[i].Time);
                lists.UnionWith(places.Select(p => p.List));
                roles.UnionWith(places.Where(p => p.List == Where.Role).Select(p => (Role)p.Number));
                (int Condition, string Arg, PolicyValue[] Values)? guard = MostSelective(ArgumentGuards(Rules[i]), sharing).Guard;
                (string Arg, Interval Range)? rangeGuard = RangeGuard(Rules[i]);
                (string Arg, PolicyValue[] Values, PolicyValueKind? OnlyKind)? failClosedValues = rangeGuard is null ? FailClosedValueGuard(Rules[i]) : null;
                if (failClosedValues is { } fc)
                {
                    foreach ((KeyToken kind, string? value) in keys)
                    {
                        foreach (Place place in places)
                        {
                            var at = new GroupSlot(kind, value, place, fc.Arg);
                            if (!failClosed.TryGetValue(at, out List<(int, PolicyValueKind?)>? group))
                            {
                                failClosed[at] = group = [];
                            }

                            group.Add((i, fc.OnlyKind));

                            foreach (PolicyValue v in fc.Values)
                            {
                                File(new Slot(kind, value, place, fc.Arg, v, FailClosed: true), i);
                            }
                        }
                    }

                    continue;
                }

                // An allow rule without an eq/one-of/in-list condition, with a range, not-in-list or ne condition: filed by all
                // of them (ConditionFilter). A deny or require-approval rule with neither a value nor a range guard: by its
                // first not-in-list or ne condition, failing closed (NotInGroup).
                bool filtered = guard is null && Rules[i].Effect == Effect.Allow && Rules[i].Conditions.Any(Filters);
                if (rangeGuard is null && failClosedValues is null && NotInGuard(Rules[i]) is { } outside)
                {
                    foreach ((KeyToken kind, string? value) in keys)
                    {
                        foreach (Place place in places)
                        {
                            var at = new GroupSlot(kind, value, place, outside.Arg);
                            if (!notIn.TryGetValue(at, out List<(int, PolicyValue[])>? group))
                            {
                                notIn[at] = group = [];
                            }

                            group.Add((i, outside.Listed));
                        }
                    }

                    continue;
                }

                if (filtered || rangeGuard is not null)
                {
                    foreach ((KeyToken kind, string? value) in keys)
                    {
                        foreach (Place place in places)
                        {
                            if (filtered)
                            {
                                var by = new FilterSlot(kind, value, place);
                                if (!filters.TryGetValue(by, out List<int>? group))
                                {
                                    filters[by] = group = [];
                                }

                                group.Add(i);
                                continue;
                            }

                            (string arg, Interval interval) = rangeGuard!.Value;
                            var at = new RangeSlot(kind, value, place, arg);
                            if (!ranged.TryGetValue(at, out List<(int, Interval)>? list))
                            {
                                ranged[at] = list = [];
                            }

                            list.Add((i, interval));
                        }
                    }

                    continue;
                }

                (string?, PolicyValue)[] values = guard is { } g ? [.. g.Values.Select(v => ((string?)g.Arg, v))] : [(null, default)];
                if (guard is { } filed)
                {
                    args.Add(filed.Arg);
                    filedBy[i] = filed.Condition;
                }

                foreach ((KeyToken kind, string? value) in keys)
                {
                    foreach (Place place in places)
                    {
                        foreach ((string? arg, PolicyValue argValue) in values)
                        {
                            File(new Slot(kind, value, place, arg, argValue), i);
                        }
                    }
                }
            }

            foreach ((RangeSlot at, List<(int Position, Interval Range)> byRange) in ranged)
            {
                _ranges[at] = Ranges.Build(byRange);
            }

            foreach ((FilterSlot at, List<int> positions) in filters)
            {
                _filters[at] = ConditionFilter.Build(Rules, positions);
            }

            _failClosed = failClosed.ToDictionary(kv => kv.Key, kv => FailClosedGroup.Of(kv.Value));

            _failClosedArgs = [.. _failClosed.Keys.Select(k => k.Arg).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
            _notIn = notIn.ToDictionary(kv => kv.Key, kv => NotInGroup.Of(kv.Value));
            _notInArgs = [.. _notIn.Keys.Select(k => k.Arg).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
            // An argument slot of more allow rules than NestAbove (they all accept the one value) is filed again by their
            // other conditions (Nest); other slots are read whole.
            _slots = [];
            _nested = [];
            foreach ((Slot at, List<int> list) in slots)
            {
                int[] positions = [.. list.Distinct().Order()];
                if (at.Arg is not null && !at.FailClosed && positions.Length > NestAbove)
                {
                    _nested[at] = Nest.Build(Rules, [.. positions.Select(p => new Nest.Entry(p, [filedBy[p]], 1))], depth: 1);
                }
                else
                {
                    _slots[at] = positions;
                }
            }

            _args = [.. args.Order(StringComparer.Ordinal)];
            _venues = lists.Contains(Where.Venue);
            _contracts = lists.Contains(Where.Contract);
            _chainIds = lists.Contains(Where.ChainId);
            _selectors = lists.Contains(Where.Selector);
            _hours = lists.Contains(Where.Hour);
            _minutes = lists.Contains(Where.Minute);
            _roles = [.. roles.Order()];
            _rangeArgs = [.. _ranges.Keys.Select(k => k.Arg).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        }

        public PolicyRule[] Rules { get; }

        /// <summary>The compiled matchers of <see cref="Rules"/>, position for position.</summary>
        public RuleMatcher[] Matchers { get; }

        /// <summary>Whether some rule of this bucket is filed by venue; contract; chain id; selector; hour; minute (<see cref="PlacesOf"/>).</summary>
        private readonly bool _venues, _contracts, _chainIds, _selectors, _hours, _minutes;

        /// <summary>The roles some rule of this bucket is filed by (none, or few).</summary>
        private readonly Role[] _roles;

        /// <summary>
        /// Adds the slots a request reaches for one key token: at "any" place and at the place of each of the request's
        /// venue, contract, chain id, selector, hour and minute of the week and roles (only for the lists some rule of the bucket is filed by), the rules
        /// filed under no argument and those filed under each indexed argument's value in the request.
        /// </summary>
        public void Collect(KeyToken kind, string? key, OperationRequest request, int minuteOfWeek, List<int[]> into)
        {
            IReadOnlyDictionary<string, PolicyValue> args = request.Args;
            CollectAt(kind, key, Place.Any, args, into);
            if (_venues && request.Venue is { } venue)
            {
                CollectAt(kind, key, new Place(Where.Venue, venue, 0), args, into);
            }

            if (_contracts && request.Contract is { } contract)
            {
                CollectAt(kind, key, new Place(Where.Contract, contract, 0), args, into);
            }

            if (_chainIds && request.ChainId is { } chainId)
            {
                CollectAt(kind, key, new Place(Where.ChainId, null, chainId), args, into);
            }

            if (_selectors && request.Selector is { } selector)
            {
                CollectAt(kind, key, new Place(Where.Selector, selector, 0), args, into);
            }

            if (_hours)
            {
                CollectAt(kind, key, new Place(Where.Hour, null, minuteOfWeek / 60), args, into);
            }

            if (_minutes)
            {
                CollectAt(kind, key, new Place(Where.Minute, null, minuteOfWeek), args, into);
            }

            foreach (Role role in _roles)
            {
                if (request.Principal.HasRole(role))
                {
                    CollectAt(kind, key, new Place(Where.Role, null, (long)role), args, into);
                }
            }
        }

        private void CollectAt(KeyToken kind, string? key, Place place, IReadOnlyDictionary<string, PolicyValue> args, List<int[]> into)
        {
            if (_slots.TryGetValue(new Slot(kind, key, place, null, default), out int[]? anyArgument))
            {
                into.Add(anyArgument);
            }

            foreach (string arg in _args)
            {
                if (!args.TryGetValue(arg, out PolicyValue value))
                {
                    continue;
                }

                var at = new Slot(kind, key, place, arg, value);
                if (_slots.TryGetValue(at, out int[]? byValue))
                {
                    into.Add(byValue);
                }
                else if (_nested.TryGetValue(at, out Nest? nest))
                {
                    nest.Collect(args, into);
                }
            }

            // A deny or require-approval rule filed by value: every one of them when the request lacks the argument; else
            // those filed under its value and those whose condition holds for a value of another kind.
            foreach (string arg in _failClosedArgs)
            {
                if (!_failClosed.TryGetValue(new GroupSlot(kind, key, place, arg), out FailClosedGroup? group))
                {
                    continue;
                }

                if (!args.TryGetValue(arg, out PolicyValue value))
                {
                    into.Add(group.All);
                    continue;
                }

                if (_slots.TryGetValue(new Slot(kind, key, place, arg, value, FailClosed: true), out int[]? byValue))
                {
                    into.Add(byValue);
                }

                foreach ((PolicyValueKind only, int[] positions) in group.OnlyKind)
                {
                    if (only != value.Kind)
                    {
                        into.Add(positions);
                    }
                }
            }

            // A deny or require-approval rule filed by a "not in" list or "not equal": those that do not list the request's
            // value (of any kind), and all of them without the argument (fail closed).
            foreach (string arg in _notInArgs)
            {
                if (_notIn.TryGetValue(new GroupSlot(kind, key, place, arg), out NotInGroup? closed)
                    && (args.TryGetValue(arg, out PolicyValue value) ? closed.Holding(value) : closed.All) is { Length: > 0 } holding)
                {
                    into.Add(holding);
                }
            }

            // The allow rules filed by their range, not-in-list and ne conditions: those whose every such condition holds (a
            // number inside each interval; a value of the kind each list needs that it does not list). A deny or
            // require-approval rule's range condition also holds without a number (every such rule of the slot is read).
            if (_filters.Count > 0 && _filters.TryGetValue(new FilterSlot(kind, key, place), out ConditionFilter? filter)
                && filter.Holding(args) is { Length: > 0 } inRange)
            {
                into.Add(inRange);
            }

            foreach (string arg in _rangeArgs)
            {
                bool isNumber = args.TryGetValue(arg, out PolicyValue value) && value.Kind == PolicyValueKind.Number;
                if (_ranges.TryGetValue(new RangeSlot(kind, key, place, arg), out Ranges? failClosed)
                    && (isNumber ? failClosed.Holding(value.Number) : failClosed.All) is { Length: > 0 } reached)
                {
                    into.Add(reached);
                }
            }
        }
    }
}
