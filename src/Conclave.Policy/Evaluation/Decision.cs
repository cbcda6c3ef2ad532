using System.Text.Json;
using Conclave.Policy.Documents;

namespace Conclave.Policy.Evaluation;

public enum DecisionOutcome
{
    Allow,
    Deny,
    RequireApproval,
}

/// <summary>
/// An explained decision (issue 16): the outcome, the hash of the policy that made it, the rules that decided it and
/// readable reasons. An allowed or held decision carries the counter <see cref="Reservations"/> to make and the
/// <see cref="Approvals"/> that must every one be met. <see cref="Shadow"/> is what the decision would be with the
/// shadow rules enforced too (null when the policy has none).
/// </summary>
public sealed record Decision(
    DecisionOutcome Outcome,
    string PolicyHash,
    IReadOnlyList<string> Rules,
    IReadOnlyList<string> Reasons,
    IReadOnlyList<Reservation> Reservations,
    IReadOnlyList<ApprovalSpec> Approvals,
    Decision? Shadow = null)
{
    /// <summary>
    /// True when the document denied only because none of its rules granted the request (default deny, or every
    /// permitting rule's limits were exceeded), as opposed to a deny rule, a level block or a gate. A server combining
    /// several documents treats such a document as not deciding (docs/POLICY.md "Several documents").
    /// </summary>
    public bool NoRuleGranted { get; init; }

    public static string OutcomeName(DecisionOutcome o) => o switch
    {
        DecisionOutcome.Allow => "allow",
        DecisionOutcome.Deny => "deny",
        _ => "require-approval",
    };

    /// <summary><c>{"decision", "policyHash", "rules", "reasons"}</c>, plus <c>"shadow"</c> when there is one.</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            Write(w);
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    public void Write(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteStartObject();
        w.WriteString("decision", OutcomeName(Outcome));
        w.WriteString("policyHash", PolicyHash);
        w.WriteStartArray("rules");
        foreach (string r in Rules)
        {
            w.WriteStringValue(r);
        }

        w.WriteEndArray();
        w.WriteStartArray("reasons");
        foreach (string r in Reasons)
        {
            w.WriteStringValue(r);
        }

        w.WriteEndArray();
        if (Shadow is { } s)
        {
            w.WritePropertyName("shadow");
            s.Write(w);
        }

        w.WriteEndObject();
    }
}
