using System.Collections;
using Conclave.Policy.Operations;

namespace Conclave.Policy.Documents;

/// <summary>
/// The values of a <c>one-of</c>, <c>in-list</c> or <c>not-in-list</c> condition, in the document's canonical order,
/// with membership in constant time once the list is long (a blocklist of thousands of addresses is one hash lookup per
/// decision, not a scan). Membership is <see cref="PolicyValue"/> equality, the matcher's own (numbers by value, so 2 and
/// 2.00 are the same; addresses by their lowercase text).
/// </summary>
public sealed class ValueSet : IReadOnlyList<PolicyValue>
{
    /// <summary>Lists up to this long are scanned: cheaper than hashing a value.</summary>
    private const int ScanUpTo = 8;

    private readonly PolicyValue[] _values;
    private readonly HashSet<PolicyValue>? _set;

    public ValueSet(IEnumerable<PolicyValue> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        _values = [.. values];
        _set = _values.Length > ScanUpTo ? [.. _values] : null;
    }

    public int Count => _values.Length;

    public PolicyValue this[int index] => _values[index];

    public bool Contains(PolicyValue value)
    {
        if (_set is not null)
        {
            return _set.Contains(value);
        }

        foreach (PolicyValue v in _values)
        {
            if (v.Equals(value))
            {
                return true;
            }
        }

        return false;
    }

    public IEnumerator<PolicyValue> GetEnumerator() => ((IEnumerable<PolicyValue>)_values).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
