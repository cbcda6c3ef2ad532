using Conclave.Policy.Documents;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;

namespace Conclave.Policy.Evaluation;

/// <summary>
/// Whether a rule applies to a request: every non-empty match list contains the request's value, every condition
/// holds, and the time is inside the rule's window. A condition on an argument the request lacks, or of the wrong
/// type, fails closed: it does not hold for allow rules, and it holds for deny and require-approval rules (so a missing
/// argument can never avoid a deny or an approval).
/// </summary>
/// <remarks>
/// Runs once per candidate rule of every decision (the worst case, rules the index cannot narrow, is every rule of the
/// document), so a rule is compiled once, when its document is loaded:
/// its match lists become arrays, sets or bit masks, its time window a mask of days, and each condition holds the
/// ordinal of its argument (<see cref="ArgumentOrdinals"/>), its operator and its bounds. The request side is read
/// once per decision (<see cref="MatchInput"/>): each argument is looked up by name at most once, however many
/// conditions name it. Nothing is allocated per candidate.
/// </remarks>
internal sealed class RuleMatcher
{
    private readonly TextSet? _principals;
    private readonly uint _roles;
    private readonly Role[]? _otherRoles;
    private readonly TextSet? _keys;
    private readonly TextSet? _labels;
    private readonly TextSet? _venues;
    private readonly long[]? _chainIds;
    private readonly uint _operations;
    private readonly OperationKind[]? _otherOperations;
    private readonly TextSet? _contracts;
    private readonly TextSet? _selectors;
    private readonly TimeWindow? _time;
    private readonly int _days;
    private readonly CompiledCondition[] _conditions;
    private readonly bool _whenUnknown;

    public RuleMatcher(PolicyRule rule, ArgumentOrdinals arguments)
    {
        ArgumentNullException.ThrowIfNull(rule);
        ArgumentNullException.ThrowIfNull(arguments);
        Rule = rule;
        RuleMatch m = rule.Match;
        _principals = TextSet.OrNull(m.Principals);
        if (m.Roles.Count > 0)
        {
            (_roles, _otherRoles) = Mask(m.Roles, MatchInput.RoleBits);
        }

        if (m.Keys.Count > 0 || m.Labels.Count > 0)
        {
            _keys = new TextSet(m.Keys);
            _labels = new TextSet(m.Labels);
        }

        _venues = TextSet.OrNull(m.Venues);
        _chainIds = m.ChainIds.Count > 0 ? [.. m.ChainIds] : null;
        if (m.Operations.Count > 0)
        {
            (_operations, _otherOperations) = Mask(m.Operations, 32);
        }

        _contracts = TextSet.OrNull(m.Contracts);
        _selectors = TextSet.OrNull(m.Selectors);
        if (rule.Time is { } t)
        {
            _time = t;
            foreach (DayOfWeek d in t.Days)
            {
                _days |= DayBit(d);
            }
        }

        // Most selective first (a conjunction without side effects: the order changes no answer, only how soon a rule
        // that fails is refused): equality and lists, then two-sided ranges, one-sided ranges, and "not" conditions.
        _conditions = [.. rule.Conditions.Select(c => new CompiledCondition(c, arguments.Of(c.Arg))).OrderBy(c => c.Rank)];
        _whenUnknown = rule.Effect != Effect.Allow;
    }

    public PolicyRule Rule { get; }

    /// <summary>
    /// Bits for the values below <paramref name="bits"/> (every role and operation the parser reads), and the rest, if
    /// any, to be scanned (a rule built by hand with a value outside the enumeration).
    /// </summary>
    private static (uint Mask, T[]? Other) Mask<T>(IReadOnlyList<T> values, int bits)
        where T : struct, Enum
    {
        uint mask = 0;
        var other = new List<T>();
        foreach (T v in values)
        {
            int n = Convert.ToInt32(v, System.Globalization.CultureInfo.InvariantCulture);
            if (n >= 0 && n < bits)
            {
                mask |= 1u << n;
            }
            else
            {
                other.Add(v);
            }
        }

        return (mask, other.Count > 0 ? [.. other] : null);
    }

    /// <summary>The bit of a day in a time window's mask; 0 for a value that is no day.</summary>
    internal static int DayBit(DayOfWeek d) => (uint)d < 7 ? 1 << (int)d : 0;

    /// <summary>Whether the rule applies to the request <paramref name="input"/> was read from.</summary>
    public bool Matches(MatchInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        OperationRequest req = input.Request;
        if (_principals is not null && !_principals.Contains(req.Principal.Id))
        {
            return false;
        }

        if ((_roles != 0 || _otherRoles is not null) && (_roles & input.RoleMask()) == 0 && !AnyRole(_otherRoles, req.Principal))
        {
            return false;
        }

        if (_keys is not null && !_keys.Contains(req.KeyId) && !_labels!.ContainsAny(req.KeyLabels))
        {
            return false;
        }

        if (_venues is not null && (req.Venue is null || !_venues.Contains(req.Venue)))
        {
            return false;
        }

        if (_chainIds is not null && (req.ChainId is not { } chain || Array.IndexOf(_chainIds, chain) < 0))
        {
            return false;
        }

        if ((_operations != 0 || _otherOperations is not null) && (_operations & input.OperationBit) == 0
            && (_otherOperations is null || Array.IndexOf(_otherOperations, req.Operation) < 0))
        {
            return false;
        }

        if (_contracts is not null && (req.Contract is null || !_contracts.Contains(req.Contract)))
        {
            return false;
        }

        if (_selectors is not null && (req.Selector is null || !_selectors.Contains(req.Selector)))
        {
            return false;
        }

        if (_time is { } t && !InWindow(t, _days, input))
        {
            return false;
        }

        CompiledCondition[] conditions = _conditions;
        for (int i = 0; i < conditions.Length; i++)
        {
            CompiledCondition c = conditions[i];
            ref readonly Argument a = ref input.Get(c.Ordinal, c.Arg);
            if (!a.Present)
            {
                if (!_whenUnknown)
                {
                    return false;
                }

                continue;
            }

            switch (c.Holds(in a))
            {
                case Truth.False:
                case Truth.Unknown when !_whenUnknown:
                    return false;
            }
        }

        return true;
    }

    private static bool AnyRole(Role[]? roles, Principal principal)
    {
        if (roles is null)
        {
            return false;
        }

        foreach (Role r in roles)
        {
            if (principal.HasRole(r))
            {
                return true;
            }
        }

        return false;
    }

    private static bool InWindow(TimeWindow t, int days, MatchInput input)
    {
        int minute = input.Minute;
        if (t.FromMinute < t.ToMinute)
        {
            return (days & input.Day) != 0 && minute >= t.FromMinute && minute < t.ToMinute;
        }

        // Wraps past midnight: the part after midnight belongs to the day the window started.
        if (minute >= t.FromMinute)
        {
            return (days & input.Day) != 0;
        }

        return minute < t.ToMinute && (days & input.PreviousDay) != 0;
    }

    /// <summary>Whether a condition holds for a value of the request, or cannot say (a value of a kind the operator does not compare).</summary>
    internal enum Truth : byte
    {
        False,
        True,
        Unknown,
    }

    /// <summary>A condition ready to compare: its argument's ordinal, its operator and its operand(s), read once.</summary>
    private sealed class CompiledCondition
    {
        private readonly ConditionOperator _op;
        private readonly PolicyValue _value;
        private readonly decimal _low;
        private readonly decimal _high;
        private readonly IReadOnlyList<PolicyValue> _values;

        /// <summary>
        /// For a range, its bounds as whole numbers for whole-number arguments (<see cref="_wholeLow"/>, <see cref="_wholeHigh"/>):
        /// for a whole n, n &lt; b exactly when n &lt; ⌈b⌉, n ≤ b when n ≤ ⌊b⌋, n &gt; b when n &gt; ⌊b⌋, n ≥ b when n ≥ ⌈b⌉.
        /// False when a bound's rounding does not fit a long (the decimal comparison is used).
        /// </summary>
        private readonly bool _whole;
        private readonly long _wholeLow;
        private readonly long _wholeHigh;

        public CompiledCondition(Condition c, int ordinal)
        {
            Arg = c.Arg;
            Ordinal = ordinal;
            _op = c.Op;
            _values = c.Values;
            switch (c.Op)
            {
                case ConditionOperator.Eq or ConditionOperator.Ne:
                    _value = c.Value!.Value;
                    break;
                case ConditionOperator.Lt or ConditionOperator.Lte or ConditionOperator.Gt or ConditionOperator.Gte:
                    _value = c.Value!.Value;
                    _low = _value.Number;
                    decimal rounded = c.Op is ConditionOperator.Lt or ConditionOperator.Gte ? decimal.Ceiling(_low) : decimal.Floor(_low);
                    _whole = Argument.TryWhole(rounded, out _wholeLow);
                    break;
                case ConditionOperator.Between:
                    _low = c.Min!.Value;
                    _high = c.Max!.Value;
                    _whole = Argument.TryWhole(decimal.Ceiling(_low), out _wholeLow) & Argument.TryWhole(decimal.Floor(_high), out _wholeHigh);
                    break;
            }
        }

        public string Arg { get; }

        public int Ordinal { get; }

        /// <summary>Where the condition is checked among its rule's (<see cref="RuleMatcher"/>'s constructor): lower first.</summary>
        public int Rank => _op switch
        {
            ConditionOperator.Eq or ConditionOperator.OneOf or ConditionOperator.InList => 0,
            ConditionOperator.Between => 1,
            ConditionOperator.Lt or ConditionOperator.Lte or ConditionOperator.Gt or ConditionOperator.Gte => 2,
            _ => 3,
        };

        public Truth Holds(in Argument a)
        {
            ref readonly PolicyValue v = ref a.Value;
            switch (_op)
            {
                case ConditionOperator.Lt or ConditionOperator.Lte or ConditionOperator.Gt or ConditionOperator.Gte or ConditionOperator.Between:
                    if (v.Kind != PolicyValueKind.Number)
                    {
                        return Truth.Unknown;
                    }

                    return Of(_whole && a.IsWhole ? InRange(_op, a.Whole, _wholeLow, _wholeHigh) : InRange(_op, v.Number, _low, _high));
                case ConditionOperator.Eq or ConditionOperator.Ne:
                    if (v.Kind != _value.Kind)
                    {
                        return Truth.Unknown;
                    }

                    return Of(v.Equals(_value) == (_op == ConditionOperator.Eq));
                case ConditionOperator.OneOf:
                    return Of(ContainsValue(_values, v));
                default: // in-list, not-in-list
                    if (v.Kind != PolicyValueKind.Address)
                    {
                        return Truth.Unknown;
                    }

                    return Of(ContainsAddress(_values, v) == (_op == ConditionOperator.InList));
            }
        }

        private static Truth Of(bool holds) => holds ? Truth.True : Truth.False;

        /// <summary>Whether <paramref name="n"/> holds range operator <paramref name="op"/> against its bounds (<paramref name="high"/>: between only), as a long or as a decimal.</summary>
        private static bool InRange<T>(ConditionOperator op, T n, T low, T high)
            where T : System.Numerics.IComparisonOperators<T, T, bool> => op switch
            {
                ConditionOperator.Lt => n < low,
                ConditionOperator.Lte => n <= low,
                ConditionOperator.Gt => n > low,
                ConditionOperator.Gte => n >= low,
                _ => n >= low && n <= high,
            };

        private static bool ContainsValue(IReadOnlyList<PolicyValue> values, PolicyValue v)
        {
            if (values is ValueSet set)
            {
                return set.Contains(v);
            }

            for (int i = 0; i < values.Count; i++)
            {
                if (values[i].Equals(v))
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>Whether an address is in the list (the condition's values are addresses, lowercase, as is <paramref name="address"/>'s text).</summary>
        private static bool ContainsAddress(IReadOnlyList<PolicyValue> values, PolicyValue address)
        {
            if (values is ValueSet set)
            {
                return set.Contains(address);
            }

            for (int i = 0; i < values.Count; i++)
            {
                if (string.Equals(values[i].Text, address.Text, StringComparison.Ordinal))
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>Texts compared ordinally: scanned while few, hashed past that.</summary>
    private sealed class TextSet
    {
        private const int ScanUpTo = 8;

        private readonly string[] _items;
        private readonly HashSet<string>? _set;

        public TextSet(IReadOnlyList<string> items)
        {
            _items = [.. items];
            _set = _items.Length > ScanUpTo ? new HashSet<string>(_items, StringComparer.Ordinal) : null;
        }

        public static TextSet? OrNull(IReadOnlyList<string> items) => items.Count > 0 ? new TextSet(items) : null;

        public bool Contains(string value)
        {
            if (_set is not null)
            {
                return _set.Contains(value);
            }

            foreach (string item in _items)
            {
                if (string.Equals(item, value, StringComparison.Ordinal))
                {
                    return true;
                }
            }

            return false;
        }

        public bool ContainsAny(IReadOnlyList<string> values)
        {
            for (int i = 0; i < values.Count; i++)
            {
                if (Contains(values[i]))
                {
                    return true;
                }
            }

            return false;
        }
    }
}

/// <summary>
/// The arguments a document's conditions name, each given an ordinal when the document is loaded, so a decision looks
/// each one up in the request at most once (<see cref="MatchInput"/>).
/// </summary>
internal sealed class ArgumentOrdinals
{
    /// <summary>
    /// Past this many arguments a decision looks arguments up by name per condition, as before, rather than allocate a
    /// slot for each (a document naming thousands of arguments, which no venue profile defines).
    /// </summary>
    internal const int SlotsUpTo = 64;

    private readonly Dictionary<string, int> _ordinals = new(StringComparer.Ordinal);

    public ArgumentOrdinals(IEnumerable<PolicyRule> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        foreach (PolicyRule rule in rules)
        {
            foreach (Condition c in rule.Conditions)
            {
                _ordinals.TryAdd(c.Arg, _ordinals.Count);
            }
        }
    }

    public int Count => _ordinals.Count;

    public int Of(string arg) => _ordinals[arg];
}

/// <summary>
/// A request as the matchers of one decision read it: the principal's roles and the operation as bits, the minute and
/// day of the decision's time, and the request's arguments looked up by name once each, on first use.
/// </summary>
internal sealed class MatchInput
{
    private readonly IReadOnlyDictionary<string, PolicyValue> _args;

    /// <summary>Per argument ordinal: whether it has been looked up yet, and what was found (<see cref="_values"/>).</summary>
    private readonly bool[]? _read;
    private readonly Argument[]? _values;

    /// <summary>The last argument looked up by name, for a document past <see cref="ArgumentOrdinals.SlotsUpTo"/> arguments.</summary>
    private Argument _byName;

    public MatchInput(OperationRequest request, DateTimeOffset now, ArgumentOrdinals arguments)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(arguments);
        Request = request;
        _args = request.Args;
        OperationBit = (uint)request.Operation < 32 ? 1u << (int)request.Operation : 0;
        DateTime utc = now.UtcDateTime;
        Minute = (utc.Hour * 60) + utc.Minute;
        Day = RuleMatcher.DayBit(utc.DayOfWeek);
        PreviousDay = RuleMatcher.DayBit(utc.AddDays(-1).DayOfWeek);
        if (arguments.Count == 0)
        {
            (_read, _values) = ([], []);
        }
        else if (arguments.Count <= ArgumentOrdinals.SlotsUpTo)
        {
            _read = new bool[arguments.Count];
            _values = new Argument[arguments.Count];
        }
    }

    public OperationRequest Request { get; }

    /// <summary>The roles a rule's mask holds (those of <see cref="Role"/>, 0–4); any other value is checked through <see cref="Principal.HasRole"/>.</summary>
    internal const int RoleBits = 5;

    /// <summary>-1 until <see cref="RoleMask"/> is first asked for.</summary>
    private long _roleMask = -1;

    /// <summary>The principal's roles among the first <see cref="RoleBits"/>, read on first use (a set lookup each).</summary>
    public uint RoleMask()
    {
        if (_roleMask < 0)
        {
            uint mask = 0;
            for (int r = 0; r < RoleBits; r++)
            {
                if (Request.Principal.HasRole((Role)r))
                {
                    mask |= 1u << r;
                }
            }

            _roleMask = mask;
        }

        return (uint)_roleMask;
    }

    public uint OperationBit { get; }

    public int Minute { get; }

    public int Day { get; }

    public int PreviousDay { get; }

    /// <summary>
    /// The request's argument <paramref name="arg"/> (ordinal <paramref name="ordinal"/> in the document); read before the
    /// next call (by name, the same storage is reused).
    /// </summary>
    public ref readonly Argument Get(int ordinal, string arg)
    {
        if (_read is null)
        {
            _byName = Argument.Of(_args, arg);
            return ref _byName;
        }

        ref Argument a = ref _values![ordinal];
        if (!_read[ordinal])
        {
            a = Argument.Of(_args, arg);
            _read[ordinal] = true;
        }

        return ref a;
    }
}

/// <summary>A request's argument as a decision reads it: present or not, its value, and a whole number as a long.</summary>
internal readonly struct Argument
{
    /// <summary>The value (default when not <see cref="Present"/>); a field, so conditions read it in place.</summary>
    public readonly PolicyValue Value;

    private Argument(PolicyValue value)
    {
        Present = true;
        Value = value;
        long whole = 0;
        IsWhole = value.Kind == PolicyValueKind.Number && TryWhole(value.Number, out whole);
        Whole = whole;
    }

    public bool Present { get; }

    /// <summary>Whether <see cref="Value"/> is a number without a fraction that fits a long (<see cref="Whole"/>).</summary>
    public bool IsWhole { get; }

    public long Whole { get; }

    public static Argument Of(IReadOnlyDictionary<string, PolicyValue> args, string arg) =>
        args.TryGetValue(arg, out PolicyValue v) ? new Argument(v) : default;

    public static bool TryWhole(decimal n, out long whole)
    {
        if (n >= long.MinValue && n <= long.MaxValue && decimal.Truncate(n) == n)
        {
            whole = (long)n;
            return true;
        }

        whole = 0;
        return false;
    }
}
