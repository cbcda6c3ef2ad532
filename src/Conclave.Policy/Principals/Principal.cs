namespace Conclave.Policy.Principals;

/// <summary>People hold the roles admin, operator, approver and auditor; programs (agents) hold the role agent only.</summary>
public enum PrincipalKind
{
    Person,
    Agent,
}

/// <summary>What a principal may be asked to do. Names on the wire are lowercase (<see cref="Roles.Name"/>).</summary>
public enum Role
{
    Admin,
    Operator,
    Approver,
    Auditor,
    Agent,
}

/// <summary>Role names and parsing.</summary>
public static class Roles
{
    public static string Name(Role role) => role switch
    {
        Role.Admin => "admin",
        Role.Operator => "operator",
        Role.Approver => "approver",
        Role.Auditor => "auditor",
        Role.Agent => "agent",
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    public static bool TryParse(string? name, out Role role)
    {
        switch (name)
        {
            case "admin": role = Role.Admin; return true;
            case "operator": role = Role.Operator; return true;
            case "approver": role = Role.Approver; return true;
            case "auditor": role = Role.Auditor; return true;
            case "agent": role = Role.Agent; return true;
            default: role = default; return false;
        }
    }
}

/// <summary>
/// A person or an agent, with its roles and the keys (by id or label) and operations it is scoped to. An empty
/// <see cref="PrincipalScope"/> list means "none", not "all": a principal is scoped to what is listed, or to
/// everything only through the explicit wildcard <c>*</c>.
/// </summary>
public sealed record Principal
{
    public Principal(string id, PrincipalKind kind, IEnumerable<Role> roles, PrincipalScope scope)
    {
        if (!Identifiers.IsValid(id))
        {
            throw PolicyErrors.Invalid("principal.id", "1-128 characters from [A-Za-z0-9._:@-]");
        }

        var set = new SortedSet<Role>(roles);
        if (set.Count == 0)
        {
            throw PolicyErrors.Missing("principal.roles");
        }

        if (kind == PrincipalKind.Agent && (set.Count != 1 || !set.Contains(Role.Agent)))
        {
            throw PolicyErrors.Invalid("principal.roles", "an agent holds exactly the role agent");
        }

        if (kind == PrincipalKind.Person && set.Contains(Role.Agent))
        {
            throw PolicyErrors.Invalid("principal.roles", "a person cannot hold the role agent");
        }

        Id = id;
        Kind = kind;
        RoleSet = set;
        Scope = scope;
    }

    public string Id { get; }

    public PrincipalKind Kind { get; }

    public IReadOnlySet<Role> RoleSet { get; }

    public PrincipalScope Scope { get; }

    public bool HasRole(Role role) => RoleSet.Contains(role);
}
