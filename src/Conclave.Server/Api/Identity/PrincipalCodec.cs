using System.Security.Cryptography;
using System.Text.Json;
using Conclave.Policy;
using Conclave.Policy.HttpSignatures;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Storage.Principals;

namespace Conclave.Server.Api.Identity;

/// <summary>
/// Between the API's JSON, the store's rows and Conclave.Policy's <see cref="Principal"/>: validation of what a client
/// sends (every error one 400 line naming the field, never the value) and the reading of stored rows.
/// </summary>
public static class PrincipalCodec
{
    public const int MaxScopeEntries = 256;

    /// <summary>The id the admin token acts under; no stored principal may take it (the audit log would confuse them).</summary>
    public const string ReservedAdminId = "admin";

    private static readonly byte[] s_ed25519SpkiPrefix = Convert.FromHexString("302a300506032b6570032100");

    public static bool IsValidId(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= 128 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '@' or '-');

    /// <summary>Validates a create request; returns the principal and its scope as stored (canonical JSON).</summary>
    public static (Principal Principal, NewPrincipal Row) ForCreate(CreatePrincipalRequest body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (!IsValidId(body.Id))
        {
            throw Bad("id must be 1-128 characters from [A-Za-z0-9._:@-]");
        }

        if (body.Id == ReservedAdminId)
        {
            throw Bad("id 'admin' is reserved for the admin token");
        }

        PrincipalKind kind = body.Kind switch
        {
            "person" => PrincipalKind.Person,
            "agent" => PrincipalKind.Agent,
            null => throw Bad("kind is required: \"person\" or \"agent\""),
            _ => throw Bad("kind must be \"person\" or \"agent\""),
        };
        List<string> roleNames = body.Roles ?? (kind == PrincipalKind.Agent ? ["agent"] : throw Bad("roles is required for a person: any of admin, operator, approver, auditor"));
        var roles = new List<Role>();
        for (int i = 0; i < roleNames.Count; i++)
        {
            if (!Roles.TryParse(roleNames[i], out Role r))
            {
                throw Bad($"roles[{i}] must be one of admin, operator, approver, auditor, agent");
            }

            roles.Add(r);
        }

        ScopeBody scope = CanonicalScope(body.Scope ?? new ScopeBody());
        Principal principal;
        try
        {
            principal = new Principal(body.Id!, kind, roles, ToPolicyScope(scope));
        }
        catch (PolicyFormatException e)
        {
            throw Bad(e.Path == "principal.roles" ? "roles: " + (kind == PrincipalKind.Agent ? "an agent holds exactly the role agent" : "a person holds one or more of admin, operator, approver, auditor") : e.Message);
        }

        return (principal, new NewPrincipal(principal.Id, KindName(kind), [.. principal.RoleSet.Select(Roles.Name)], JsonSerializer.Serialize(scope, IdentityJsonContext.Default.ScopeBody)));
    }

    /// <summary>A stored principal as Conclave.Policy sees it.</summary>
    public static Principal ToPolicy(PrincipalRecord row)
    {
        ArgumentNullException.ThrowIfNull(row);
        PrincipalKind kind = row.Kind == "agent" ? PrincipalKind.Agent : PrincipalKind.Person;
        var roles = row.Roles.Select(n => Roles.TryParse(n, out Role r) ? r : throw new InvalidOperationException("a stored principal has an unknown role")).ToList();
        return new Principal(row.Id, kind, roles, ToPolicyScope(ReadScope(row)));
    }

    public static ScopeBody ReadScope(PrincipalRecord row)
    {
        ArgumentNullException.ThrowIfNull(row);
        return JsonSerializer.Deserialize(row.Scope, IdentityJsonContext.Default.ScopeBody) ?? new ScopeBody([], [], []);
    }

    public static PrincipalResponse ToResponse(PrincipalRecord row, IReadOnlyList<CredentialRecord> credentials, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(row);
        ArgumentNullException.ThrowIfNull(credentials);
        return new PrincipalResponse(row.Id, row.Kind, row.Roles, ReadScope(row), row.Disabled, row.CreatedAt, row.UpdatedAt, [.. credentials.Select(c => ToResponse(c, now))]);
    }

    public static CredentialResponse ToResponse(CredentialRecord c, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(c);
        return new CredentialResponse(c.KeyId, c.PrincipalId, c.Algorithm, Convert.ToBase64String(c.PublicKey), c.CreatedAt, c.LeaseExpiresAt, c.Revoked, c.RevokedAt,
            c.Revoked ? "revoked" : now >= c.LeaseExpiresAt ? "lapsed" : "active");
    }

    /// <summary>The algorithm and raw public key of a credential request (base64 or base64url of the raw key or its SubjectPublicKeyInfo).</summary>
    public static HttpVerificationKey ParseKey(string? algorithm, string? publicKey)
    {
        if (algorithm is null)
        {
            throw Bad("algorithm is required: \"ed25519\" or \"ecdsa-p256-sha256\"");
        }

        if (!HttpSignatureAlgorithms.TryParse(algorithm, out HttpSignatureAlgorithm alg))
        {
            throw Bad("algorithm must be \"ed25519\" or \"ecdsa-p256-sha256\"");
        }

        if (string.IsNullOrEmpty(publicKey))
        {
            throw Bad("publicKey is required (base64 of the raw public key or of its DER SubjectPublicKeyInfo)");
        }

        byte[] raw;
        try
        {
            string b64 = publicKey.Replace('-', '+').Replace('_', '/');
            raw = Convert.FromBase64String(b64.PadRight(b64.Length + ((4 - (b64.Length % 4)) % 4), '='));
        }
        catch (FormatException)
        {
            throw Bad("publicKey must be base64 (or base64url)");
        }

        try
        {
            if (alg == HttpSignatureAlgorithm.Ed25519)
            {
                if (raw.Length == 44 && raw.AsSpan(0, 12).SequenceEqual(s_ed25519SpkiPrefix))
                {
                    raw = raw[12..];
                }

                return new HttpVerificationKey(alg, raw);
            }

            HttpVerificationKey key = raw.Length == 65 ? new HttpVerificationKey(alg, raw) : HttpVerificationKey.FromP256SubjectPublicKeyInfo(raw);
            byte[] pk = [.. key.PublicKey];
            using ECDsa check = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = pk[1..33], Y = pk[33..] } });
            return key;
        }
        catch (PolicyFormatException)
        {
            throw Bad(alg == HttpSignatureAlgorithm.Ed25519 ? "publicKey: an Ed25519 public key is 32 bytes" : "publicKey: a P-256 public key is 65 bytes (04 ‖ x ‖ y) or a DER SubjectPublicKeyInfo");
        }
        catch (CryptographicException)
        {
            throw Bad("publicKey is not a point on P-256");
        }
    }

    public static string KindName(PrincipalKind kind) => kind == PrincipalKind.Agent ? "agent" : "person";

    private static ScopeBody CanonicalScope(ScopeBody scope)
    {
        List<string> keys = Entries(scope.Keys, "scope.keys");
        List<string> labels = Entries(scope.Labels, "scope.labels");
        List<string> ops = Entries(scope.Operations, "scope.operations");
        for (int i = 0; i < ops.Count; i++)
        {
            if (ops[i] != "*" && (!Operations.TryParse(ops[i], out OperationKind k) || k == OperationKind.Unknown))
            {
                throw Bad($"scope.operations[{i}] must be an operation name ({string.Join(", ", Operations.Names.Where(n => n != "unknown").Order(StringComparer.Ordinal))}) or \"*\"");
            }
        }

        return new ScopeBody(keys, labels, ops);
    }

    private static List<string> Entries(List<string>? list, string field)
    {
        list ??= [];
        if (list.Count > MaxScopeEntries)
        {
            throw Bad($"{field} has more than {MaxScopeEntries} entries");
        }

        for (int i = 0; i < list.Count; i++)
        {
            if (string.IsNullOrEmpty(list[i]) || list[i].Length > 128 || list[i].Any(char.IsControl))
            {
                throw Bad($"{field}[{i}] must be 1-128 characters without control characters");
            }
        }

        return [.. list.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
    }

    private static PrincipalScope ToPolicyScope(ScopeBody s)
    {
        List<string> ops = s.Operations ?? [];
        return new PrincipalScope(s.Keys ?? [], s.Labels ?? [], [.. ops.Where(o => o != "*").Select(Operations.Parse)], AnyOperation: ops.Contains("*"));
    }

    private static ApiException Bad(string detail) => new(ProblemTypes.InvalidRequest, detail);
}
