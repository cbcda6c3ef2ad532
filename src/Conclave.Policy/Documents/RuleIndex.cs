using Conclave.Policy.Operations;

namespace Conclave.Policy.Documents;

/// <summary>
/// A document's rules indexed for decisions (docs/POLICY.md "Decision latency"). The first level is (principal,
/// operation): the rules naming this principal or any, and this operation or any — four disjoint buckets. Inside each
/// bucket a second level is (key, venue, argument): a rule that lists keys or labels is filed under each key id and
/// label it names (else under "any key"), under each venue it names (else under "any venue"), and — an allow rule
/// with an <c>eq</c> or <c>one-of</c> condition — under its first such condition's argument and each value it accepts
/// (else under "any argument"). A decision reads, per bucket, only the slots the request's key id, labels, venue and
/// argument values can reach, merged in document order without repeats, so a policy of a thousand rules for one
/// principal and operation that differ by key, venue or an argument's value (a rule per option series) reads only the
/// few that can apply. The index only skips rules <see cref="Evaluation.RuleMatcher"/> would refuse: an allow rule's
/// <c>eq</c>/<c>one-of</c> condition holds only when the request carries that argument with an equal value
/// (<see cref="PolicyValue"/> equality, the matcher's own); deny and require-approval rules are never filed by argument,
/// because for them a missing or mistyped argument makes the condition hold. Every criterion is still checked per
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

    public RuleIndex(IReadOnlyList<PolicyRule> rules)
    {
        var lists = new Dictionary<(string?, OperationKind?), List<PolicyRule>>();
        foreach (PolicyRule rule in rules)
        {
            string?[] principals = rule.Match.Principals.Count == 0 ? [null] : [.. rule.Match.Principals.Distinct(StringComparer.Ordinal)];
            OperationKind?[] ops = rule.Match.Operations.Count == 0 ? [null] : [.. rule.Match.Operations.Distinct().Select(o => (OperationKind?)o)];
            foreach (string? p in principals)
            {
                foreach (OperationKind? o in ops)
                {
                    if (!lists.TryGetValue((p, o), out List<PolicyRule>? list))
                    {
                        lists[(p, o)] = list = [];
                    }

                    list.Add(rule);
                }
            }
        }

        _buckets = lists.ToDictionary(kv => kv.Key, kv => new Bucket(kv.Value));
    }

    /// <summary>The four first-level buckets of a request, most specific first.</summary>
    private static (string?, OperationKind?)[] Buckets(string principalId, OperationKind operation) =>
        [(principalId, operation), (principalId, null), (null, operation), (null, null)];

    /// <summary>Every rule of the (principal, operation) buckets: the first level alone (the reference the tests compare against).</summary>
    public IEnumerable<PolicyRule> ByPrincipalAndOperation(string principalId, OperationKind operation)
    {
        foreach ((string?, OperationKind?) key in Buckets(principalId, operation))
        {
            if (_buckets.TryGetValue(key, out Bucket? bucket))
            {
                foreach (PolicyRule rule in bucket.Rules)
                {
                    yield return rule;
                }
            }
        }
    }

    /// <summary>
    /// The rules that can match a request by this principal, for this operation, on this key (id and labels) and
    /// venue: those of <see cref="ByPrincipalAndOperation"/> whose key/label and venue lists are empty or name the
    /// request's, in the same order.
    /// </summary>
    public IEnumerable<PolicyRule> Candidates(string principalId, OperationKind operation, string keyId, IReadOnlyList<string> keyLabels, string? venue,
        IReadOnlyDictionary<string, PolicyValue> args)
    {
        var slots = new List<int[]>(4 + (2 * keyLabels.Count));
        foreach ((string?, OperationKind?) key in Buckets(principalId, operation))
        {
            if (!_buckets.TryGetValue(key, out Bucket? bucket))
            {
                continue;
            }

            slots.Clear();
            bucket.Collect(KeyToken.AnyKey, null, venue, args, slots);
            bucket.Collect(KeyToken.Key, keyId, venue, args, slots);
            for (int i = 0; i < keyLabels.Count; i++)
            {
                bucket.Collect(KeyToken.Label, keyLabels[i], venue, args, slots);
            }

            if (slots.Count == 1)
            {
                foreach (int position in slots[0])
                {
                    yield return bucket.Rules[position];
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

                yield return bucket.Rules[next];
            }
        }
    }

    /// <summary>A slot of a bucket: key token, venue (null: any), and argument name and value (null name: any argument).</summary>
    private readonly record struct Slot(KeyToken Kind, string? Key, string? Venue, string? Arg, PolicyValue Value);

    /// <summary>
    /// The argument values an allow rule needs, from its first <c>eq</c> or <c>one-of</c> condition; null when the rule
    /// cannot be filed by argument (not an allow rule, or no such condition).
    /// </summary>
    private static (string Arg, PolicyValue[] Values)? ArgumentGuard(PolicyRule rule)
    {
        if (rule.Effect != Effect.Allow)
        {
            return null;
        }

        foreach (Condition c in rule.Conditions)
        {
            if (c.Op == ConditionOperator.Eq && c.Value is { } v)
            {
                return (c.Arg, [v]);
            }

            if (c.Op == ConditionOperator.OneOf)
            {
                return (c.Arg, [.. c.Values.Distinct()]);
            }
        }

        return null;
    }

    /// <summary>
    /// The interval of numbers an allow rule without an <c>eq</c>/<c>one-of</c> condition needs, from its first range
    /// condition (<c>lt</c>, <c>lte</c>, <c>gt</c>, <c>gte</c>, <c>between</c>): the matcher holds such a condition only for
    /// a number argument inside it. Null bounds are unbounded.
    /// </summary>
    private static (string Arg, Interval Range)? RangeGuard(PolicyRule rule)
    {
        if (rule.Effect != Effect.Allow || ArgumentGuard(rule) is not null)
        {
            return null;
        }

        foreach (Condition c in rule.Conditions)
        {
            Interval? range = c.Op switch
            {
                ConditionOperator.Lt => new Interval(null, false, c.Value!.Value.Number, false),
                ConditionOperator.Lte => new Interval(null, false, c.Value!.Value.Number, true),
                ConditionOperator.Gt => new Interval(c.Value!.Value.Number, false, null, false),
                ConditionOperator.Gte => new Interval(c.Value!.Value.Number, true, null, false),
                ConditionOperator.Between => new Interval(c.Min!.Value, true, c.Max!.Value, true),
                _ => null,
            };
            if (range is { } r)
            {
                return (c.Arg, r);
            }
        }

        return null;
    }

    /// <summary>Numbers from <see cref="Low"/> to <see cref="High"/> (null: unbounded), each end included or not.</summary>
    private readonly record struct Interval(decimal? Low, bool LowIncluded, decimal? High, bool HighIncluded);

    /// <summary>A range slot: the rules filed under one (key token, venue, argument) by the interval they need.</summary>
    private readonly record struct RangeSlot(KeyToken Kind, string? Key, string? Venue, string Arg);

    /// <summary>
    /// Rules by interval of one argument. Intervals bounded on one side only (<c>lt</c>, <c>lte</c>, <c>gt</c>,
    /// <c>gte</c>) are kept sorted by their bound: the rules holding a number are a run from one end, found by binary
    /// search and read in time proportional to how many hold it, however nested (a floor per tier). Intervals bounded on
    /// both sides (<c>between</c>) cut the number line at their bounds into elementary segments (each bound a point, the
    /// open stretches between them), and each segment lists the rules covering it; a number falls in exactly one segment.
    /// The segments are built only while their lists stay within <see cref="MaxEntriesPerRule"/> entries per rule (many
    /// nested bands would grow quadratically): otherwise <see cref="TryBuild"/> gives those rules back to be filed under
    /// "any argument".
    /// </summary>
    private sealed class Ranges
    {
        public const int MaxEntriesPerRule = 16;

        private readonly decimal[] _bounds;
        private readonly int[][] _segments;
        private readonly (decimal Bound, bool Included, int Position)[] _floors;
        private readonly (decimal Bound, bool Included, int Position)[] _ceilings;

        private Ranges(decimal[] bounds, int[][] segments, (decimal, bool, int)[] floors, (decimal, bool, int)[] ceilings)
        {
            _bounds = bounds;
            _segments = segments;
            _floors = floors;
            _ceilings = ceilings;
        }

        /// <summary>The index of <paramref name="rules"/>, and the two-sided ones it leaves out (too nested to index).</summary>
        public static (Ranges Index, List<int> NotIndexed) Build(List<(int Position, Interval Range)> rules)
        {
            (decimal, bool, int)[] floors = [.. rules.Where(r => r.Range.High is null && r.Range.Low is not null)
                .Select(r => (r.Range.Low!.Value, r.Range.LowIncluded, r.Position)).OrderBy(f => f.Item1)];
            (decimal, bool, int)[] ceilings = [.. rules.Where(r => r.Range.Low is null && r.Range.High is not null)
                .Select(r => (r.Range.High!.Value, r.Range.HighIncluded, r.Position)).OrderByDescending(c => c.Item1)];
            List<(int Position, Interval Range)> bands = [.. rules.Where(r => r.Range.Low is not null && r.Range.High is not null)];
            decimal[] bounds = [.. bands.SelectMany(r => new[] { r.Range.Low!.Value, r.Range.High!.Value }).Distinct().Order()];
            var segments = new List<int>[(2 * bounds.Length) + 1];
            long entries = 0;
            foreach ((int position, Interval range) in bands)
            {
                // Segment 2j+1 is the point bounds[j]; segment 2j the open stretch below it (2 * bounds.Length: above the last).
                int from = (2 * Array.BinarySearch(bounds, range.Low!.Value)) + (range.LowIncluded ? 1 : 2);
                int to = (2 * Array.BinarySearch(bounds, range.High!.Value)) + (range.HighIncluded ? 1 : 0);
                entries += Math.Max(0, to - from + 1);
                if (entries > ((long)MaxEntriesPerRule * bands.Count) + 64)
                {
                    return (new Ranges([], [[]], floors, ceilings), [.. bands.Select(b => b.Position)]);
                }

                for (int k = from; k <= to; k++)
                {
                    (segments[k] ??= []).Add(position);
                }
            }

            return (new Ranges(bounds, [.. segments.Select(l => l is null ? [] : l.Order().ToArray())], floors, ceilings), []);
        }

        /// <summary>The rules (positions in document order) whose interval holds <paramref name="value"/>.</summary>
        public int[] Holding(decimal value)
        {
            int j = Array.BinarySearch(_bounds, value);
            int[] band = _bounds.Length == 0 ? [] : _segments[j >= 0 ? (2 * j) + 1 : 2 * ~j];
            var held = new List<int>(band);
            foreach ((decimal bound, bool included, int position) in _floors)
            {
                if (bound > value)
                {
                    break;
                }

                if (bound < value || included)
                {
                    held.Add(position);
                }
            }

            foreach ((decimal bound, bool included, int position) in _ceilings)
            {
                if (bound < value)
                {
                    break;
                }

                if (bound > value || included)
                {
                    held.Add(position);
                }
            }

            if (held.Count == band.Length)
            {
                return band;
            }

            held.Sort();
            return [.. held];
        }
    }

    /// <summary>One (principal, operation) bucket: its rules in document order and their positions by slot.</summary>
    private sealed class Bucket
    {
        private readonly Dictionary<Slot, int[]> _slots;

        /// <summary>The arguments some rule of this bucket is filed under (few: usually none or one).</summary>
        private readonly string[] _args;

        private readonly Dictionary<RangeSlot, Ranges> _ranges = [];

        /// <summary>The arguments some rule of this bucket is filed under by interval.</summary>
        private readonly string[] _rangeArgs;

        public Bucket(List<PolicyRule> rules)
        {
            Rules = [.. rules];
            var slots = new Dictionary<Slot, List<int>>();
            var args = new HashSet<string>(StringComparer.Ordinal);
            var ranged = new Dictionary<RangeSlot, List<(int, Interval)>>();
            void File(Slot slot, int position)
            {
                if (!slots.TryGetValue(slot, out List<int>? list))
                {
                    slots[slot] = list = [];
                }

                list.Add(position);
            }

            for (int i = 0; i < Rules.Length; i++)
            {
                RuleMatch m = Rules[i].Match;
                (KeyToken, string?)[] keys = m.Keys.Count == 0 && m.Labels.Count == 0
                    ? [(KeyToken.AnyKey, null)]
                    : [.. m.Keys.Distinct(StringComparer.Ordinal).Select(k => (KeyToken.Key, (string?)k)), .. m.Labels.Distinct(StringComparer.Ordinal).Select(l => (KeyToken.Label, (string?)l))];
                string?[] venues = m.Venues.Count == 0 ? [null] : [.. m.Venues.Distinct(StringComparer.Ordinal)];
                (string Arg, PolicyValue[] Values)? guard = ArgumentGuard(Rules[i]);
                if (RangeGuard(Rules[i]) is { } range)
                {
                    foreach ((KeyToken kind, string? value) in keys)
                    {
                        foreach (string? venue in venues)
                        {
                            var at = new RangeSlot(kind, value, venue, range.Arg);
                            if (!ranged.TryGetValue(at, out List<(int, Interval)>? list))
                            {
                                ranged[at] = list = [];
                            }

                            list.Add((i, range.Range));
                        }
                    }

                    continue;
                }

                (string?, PolicyValue)[] values = guard is { } g ? [.. g.Values.Select(v => ((string?)g.Arg, v))] : [(null, default)];
                if (guard is { } filed)
                {
                    args.Add(filed.Arg);
                }

                foreach ((KeyToken kind, string? value) in keys)
                {
                    foreach (string? venue in venues)
                    {
                        foreach ((string? arg, PolicyValue argValue) in values)
                        {
                            File(new Slot(kind, value, venue, arg, argValue), i);
                        }
                    }
                }
            }

            foreach ((RangeSlot at, List<(int, Interval)> byRange) in ranged)
            {
                (Ranges index, List<int> notIndexed) = Ranges.Build(byRange);
                _ranges[at] = index;
                foreach (int position in notIndexed)
                {
                    File(new Slot(at.Kind, at.Key, at.Venue, null, default), position); // too nested to index: any argument
                }
            }

            _slots = slots.ToDictionary(kv => kv.Key, kv => kv.Value.Order().ToArray());
            _args = [.. args.Order(StringComparer.Ordinal)];
            _rangeArgs = [.. _ranges.Keys.Select(k => k.Arg).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        }

        public PolicyRule[] Rules { get; }

        /// <summary>
        /// Adds the slots a request reaches for one key token: for any venue and for its venue, the rules filed under
        /// no argument and those filed under each indexed argument's value in the request.
        /// </summary>
        public void Collect(KeyToken kind, string? key, string? venue, IReadOnlyDictionary<string, PolicyValue> args, List<int[]> into)
        {
            CollectVenue(kind, key, null, args, into);
            if (venue is not null)
            {
                CollectVenue(kind, key, venue, args, into);
            }
        }

        private void CollectVenue(KeyToken kind, string? key, string? venue, IReadOnlyDictionary<string, PolicyValue> args, List<int[]> into)
        {
            if (_slots.TryGetValue(new Slot(kind, key, venue, null, default), out int[]? anyArgument))
            {
                into.Add(anyArgument);
            }

            foreach (string arg in _args)
            {
                if (args.TryGetValue(arg, out PolicyValue value) && _slots.TryGetValue(new Slot(kind, key, venue, arg, value), out int[]? byValue))
                {
                    into.Add(byValue);
                }
            }

            // A range condition holds only for a number argument (any other kind, or none, leaves the allow rule out).
            foreach (string arg in _rangeArgs)
            {
                if (args.TryGetValue(arg, out PolicyValue value) && value.Kind == PolicyValueKind.Number
                    && _ranges.TryGetValue(new RangeSlot(kind, key, venue, arg), out Ranges? ranges) && ranges.Holding(value.Number) is { Length: > 0 } holding)
                {
                    into.Add(holding);
                }
            }
        }
    }
}
