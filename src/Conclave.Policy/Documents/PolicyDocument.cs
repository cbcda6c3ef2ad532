using System.Security.Cryptography;
using System.Text.Json;
using Conclave.Policy.Evaluation;
using Conclave.Policy.Operations;
using Conclave.Policy.Risk;

namespace Conclave.Policy.Documents;

/// <summary>
/// A versioned, content-hashed policy document (issue 16 "Policies"). Parse with <see cref="Parse"/>; the document's
/// <see cref="Hash"/> is <c>sha256:</c> and the lowercase hex SHA-256 of <see cref="CanonicalJson"/>, the canonical form
/// described in docs/POLICY.md "Canonical form": every default written out, keys in a fixed order, sets sorted, rules
/// sorted by id, numbers without trailing zeros, no whitespace. Two documents that mean the same thing hash the same.
/// </summary>
public sealed class PolicyDocument
{
    private readonly Dictionary<RiskLevel, LevelOverride> _levels;
    private readonly RuleIndex _index;

    internal PolicyDocument(string id, long version, IReadOnlyList<PolicyRule> rules, Dictionary<RiskLevel, LevelOverride> levels, ApprovalSpec? levelApproval)
    {
        Id = id;
        Version = version;
        Rules = rules;
        _levels = levels;
        LevelApproval = levelApproval;
        Arguments = new ArgumentOrdinals(rules);
        Matchers = [.. rules.Select(r => new RuleMatcher(r, Arguments))];
        _index = new RuleIndex(Matchers);
        HasShadowRules = rules.Any(r => r.Mode == RuleMode.Shadow);
        CanonicalJson = PolicyCanonicalWriter.Write(this);
        Hash = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(CanonicalJson));
    }

    public string Id { get; }

    /// <summary>Whether any rule is in shadow mode (a second, shadow decision is then made beside the enforced one).</summary>
    internal bool HasShadowRules { get; }

    public long Version { get; }

    public IReadOnlyList<PolicyRule> Rules { get; }

    public ApprovalSpec? LevelApproval { get; }

    /// <summary>UTF-8 canonical JSON (docs/POLICY.md "Canonical form").</summary>
    public byte[] CanonicalJson { get; }

    public string Hash { get; }

    /// <summary>
    /// The effective override at a level: what the document declares (or the built-in multipliers 1, 0.5, 0.2, 0),
    /// plus every tightening of the levels below it.
    /// </summary>
    public LevelOverride Level(RiskLevel level) => _levels.TryGetValue(level, out var o) ? o : LevelOverride.Default(level);

    /// <summary>
    /// The rules that can match <paramref name="request"/> (<see cref="RuleIndex"/>): by principal and operation, then by
    /// key (id or label), venue, contract, chain id, selector, the hour of the week at <paramref name="now"/> or role, and
    /// argument values. Every criterion is still checked per rule.
    /// </summary>
    internal IEnumerable<PolicyRule> Candidates(OperationRequest request, DateTimeOffset now) => CandidateMatchers(request, now).Select(m => m.Rule);

    /// <summary>The rules of the principal and operation alone (the index's first level): the reference for tests.</summary>
    internal IEnumerable<PolicyRule> CandidatesByPrincipalAndOperation(OperationRequest request) =>
        MatchersByPrincipalAndOperation(request).Select(m => m.Rule);

    /// <summary>The arguments the document's conditions name, by ordinal (<see cref="RuleMatcher"/>).</summary>
    internal ArgumentOrdinals Arguments { get; }

    /// <summary>Every rule, compiled (<see cref="RuleMatcher"/>), in the order of <see cref="Rules"/>.</summary>
    internal IReadOnlyList<RuleMatcher> Matchers { get; }

    /// <summary><see cref="Candidates"/>, compiled (<see cref="RuleMatcher"/>).</summary>
    internal IEnumerable<RuleMatcher> CandidateMatchers(OperationRequest request, DateTimeOffset now) => _index.Candidates(request, now);

    /// <summary><see cref="CandidatesByPrincipalAndOperation"/>, compiled.</summary>
    internal IEnumerable<RuleMatcher> MatchersByPrincipalAndOperation(OperationRequest request) =>
        _index.ByPrincipalAndOperation(request.Principal.Id, request.Operation);

    /// <summary>Parses and validates a document; every error is a <see cref="PolicyFormatException"/> naming the field.</summary>
    public static PolicyDocument Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw PolicyErrors.Json("the policy document", e);
        }

        using (doc)
        {
            return PolicyParser.ParseDocument(doc.RootElement);
        }
    }

    public override string ToString() => $"PolicyDocument({Id} v{Version}, {Rules.Count} rules, {Hash})";
}
