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

    /// <summary>One (principal, operation) bucket: its rules in document order and their positions by slot.</summary>
    private sealed class Bucket
    {
        private readonly Dictionary<Slot, int[]> _slots;

        /// <summary>The arguments some rule of this bucket is filed under (few: usually none or one).</summary>
        private readonly string[] _args;

        public Bucket(List<PolicyRule> rules)
        {
            Rules = [.. rules];
            var slots = new Dictionary<Slot, List<int>>();
            var args = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < Rules.Length; i++)
            {
                RuleMatch m = Rules[i].Match;
                (KeyToken, string?)[] keys = m.Keys.Count == 0 && m.Labels.Count == 0
                    ? [(KeyToken.AnyKey, null)]
                    : [.. m.Keys.Distinct(StringComparer.Ordinal).Select(k => (KeyToken.Key, (string?)k)), .. m.Labels.Distinct(StringComparer.Ordinal).Select(l => (KeyToken.Label, (string?)l))];
                string?[] venues = m.Venues.Count == 0 ? [null] : [.. m.Venues.Distinct(StringComparer.Ordinal)];
                (string Arg, PolicyValue[] Values)? guard = ArgumentGuard(Rules[i]);
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
                            var slot = new Slot(kind, value, venue, arg, argValue);
                            if (!slots.TryGetValue(slot, out List<int>? list))
                            {
                                slots[slot] = list = [];
                            }

                            list.Add(i);
                        }
                    }
                }
            }

            _slots = slots.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
            _args = [.. args.Order(StringComparer.Ordinal)];
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
        }
    }
}
