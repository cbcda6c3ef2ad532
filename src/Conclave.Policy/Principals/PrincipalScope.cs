using Conclave.Policy.Operations;

namespace Conclave.Policy.Principals;

/// <summary>
/// The keys (ids or labels) and operations a principal may ask for. <c>*</c> in a list means any; an empty list
/// means none. Checked before any policy rule: a request out of scope is denied whatever the policy says.
/// </summary>
public sealed record PrincipalScope(IReadOnlyList<string> Keys, IReadOnlyList<string> Labels, IReadOnlyList<OperationKind> Operations, bool AnyOperation = false)
{
    public static PrincipalScope Everything { get; } = new(["*"], [], [], AnyOperation: true);

    public static PrincipalScope Nothing { get; } = new([], [], []);

    /// <summary>True when the key (by id or one of its labels) and the operation are both within scope.</summary>
    public bool Allows(string keyId, IReadOnlyCollection<string> keyLabels, OperationKind operation)
    {
        bool keyOk = Keys.Contains("*") || Keys.Contains(keyId, StringComparer.Ordinal) || keyLabels.Any(l => Labels.Contains(l, StringComparer.Ordinal));
        bool opOk = AnyOperation || Operations.Contains(operation);
        return keyOk && opOk && operation != OperationKind.Unknown;
    }
}
