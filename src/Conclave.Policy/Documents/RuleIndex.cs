using Conclave.Policy.Operations;

namespace Conclave.Policy.Documents;

/// <summary>
/// A document's rules indexed for decisions (docs/POLICY.md "Decision latency"). The first level is (principal,
/// operation): the rules naming this principal or any, and this operation or any — four disjoint buckets. Inside each
/// bucket a second level is (key, venue): a rule that lists keys or labels is filed under each key id and label it
/// names (else under "any key"), and under each venue it names (else under "any venue"). A decision reads, per bucket,
/// only the slots the request's key id, labels and venue can reach, merged in document order without repeats, so a
/// policy of a thousand rules for one principal and operation that differ by key or venue reads only the few for this
/// key and venue. The index only skips rules <see cref="Evaluation.RuleMatcher"/> would refuse on the principal,
/// operation, key/label or venue lists; every criterion is still checked per candidate, and the candidates come in the
/// order the first level alone gives (<see cref="ByPrincipalAndOperation"/>), so decisions are the same
/// (<c>RuleIndexTests</c> compares the two on random policies).
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
    public IEnumerable<PolicyRule> Candidates(string principalId, OperationKind operation, string keyId, IReadOnlyList<string> keyLabels, string? venue)
    {
        var slots = new List<int[]>(4 + (2 * keyLabels.Count));
        foreach ((string?, OperationKind?) key in Buckets(principalId, operation))
        {
            if (!_buckets.TryGetValue(key, out Bucket? bucket))
            {
                continue;
            }

            slots.Clear();
            bucket.Collect(KeyToken.AnyKey, null, venue, slots);
            bucket.Collect(KeyToken.Key, keyId, venue, slots);
            for (int i = 0; i < keyLabels.Count; i++)
            {
                bucket.Collect(KeyToken.Label, keyLabels[i], venue, slots);
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

    /// <summary>One (principal, operation) bucket: its rules in document order and their positions by (key token, venue).</summary>
    private sealed class Bucket
    {
        private readonly Dictionary<(KeyToken Kind, string? Key, string? Venue), int[]> _slots;

        public Bucket(List<PolicyRule> rules)
        {
            Rules = [.. rules];
            var slots = new Dictionary<(KeyToken, string?, string?), List<int>>();
            for (int i = 0; i < Rules.Length; i++)
            {
                RuleMatch m = Rules[i].Match;
                (KeyToken, string?)[] keys = m.Keys.Count == 0 && m.Labels.Count == 0
                    ? [(KeyToken.AnyKey, null)]
                    : [.. m.Keys.Distinct(StringComparer.Ordinal).Select(k => (KeyToken.Key, (string?)k)), .. m.Labels.Distinct(StringComparer.Ordinal).Select(l => (KeyToken.Label, (string?)l))];
                string?[] venues = m.Venues.Count == 0 ? [null] : [.. m.Venues.Distinct(StringComparer.Ordinal)];
                foreach ((KeyToken kind, string? value) in keys)
                {
                    foreach (string? venue in venues)
                    {
                        if (!slots.TryGetValue((kind, value, venue), out List<int>? list))
                        {
                            slots[(kind, value, venue)] = list = [];
                        }

                        list.Add(i);
                    }
                }
            }

            _slots = slots.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        }

        public PolicyRule[] Rules { get; }

        /// <summary>Adds the slots a request reaches for one key token: the rules for any venue, and those for its venue.</summary>
        public void Collect(KeyToken kind, string? key, string? venue, List<int[]> into)
        {
            if (_slots.TryGetValue((kind, key, null), out int[]? anyVenue))
            {
                into.Add(anyVenue);
            }

            if (venue is not null && _slots.TryGetValue((kind, key, venue), out int[]? thisVenue))
            {
                into.Add(thisVenue);
            }
        }
    }
}
