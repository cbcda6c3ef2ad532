using System.Numerics;
using System.Text.Json;
using Conclave.Policy.Operations;
using Conclave.Policy.Principals;
using Conclave.Policy.Venues;
using Conclave.Server.Api;
using Conclave.Storage.Keys;

namespace Conclave.Server.Policy;

/// <summary>
/// What each signing route asks policy to decide (docs/POLICY.md "Enforcement"): a REST sign request is
/// <c>raw-digest</c> (a <c>digest</c>) or <c>message</c> (a <c>message</c>); JSON-RPC <c>eth_sign</c> and
/// <c>personal_sign</c> are <c>message</c>, <c>eth_signTypedData_v4</c> is the venue operation a profile maps its
/// domain and primaryType to, else <c>typed-data</c> (with the domain's chain id and verifying contract), and <c>eth_signTransaction</c> is classified against the venue profiles
/// (<see cref="VenueRegistry.Classify"/>); a transaction the profiles cannot classify is <c>raw-digest</c> (the signer
/// cannot tell what it does), denied unless a rule allows raw digests explicitly.
/// </summary>
public static class SigningOperations
{
    public static OperationRequest ForSign(Principal principal, KeyRecord key, SignRequest body)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(body);
        OperationKind kind;
        if (body.Operation is null)
        {
            if (body.Digest is null && body.Message is null)
            {
                throw new ApiException(ProblemTypes.WrongInput, "the request has neither \"message\" nor \"digest\"");
            }

            kind = body.Digest is not null ? OperationKind.RawDigest : OperationKind.Message;
        }
        else
        {
            kind = Operations.Parse(body.Operation);
            if (kind is not (OperationKind.RawDigest or OperationKind.Message))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, kind == OperationKind.Unknown
                    ? "operation must be \"message\" or \"raw-digest\" on this route"
                    : $"operation {Operations.Name(kind)} is not signed through this route: a venue operation is signed as an Ethereum transaction through /rpc eth_signTransaction, where it is classified against the venue profiles");
            }

            if (kind == OperationKind.RawDigest && (body.Digest is null || body.Message is not null))
            {
                throw new ApiException(ProblemTypes.WrongInput, "operation raw-digest signs a \"digest\" (hex), not a \"message\"");
            }

            if (kind == OperationKind.Message && (body.Message is null || body.Digest is not null))
            {
                throw new ApiException(ProblemTypes.WrongInput, "operation message signs a \"message\" (hex), not a \"digest\"");
            }
        }

        return Request(principal, key, kind);
    }

    public static OperationRequest Request(Principal principal, KeyRecord key, OperationKind kind, long? chainId = null, string? contract = null) => new()
    {
        Principal = principal,
        Operation = kind,
        KeyId = key.Id,
        KeyLabels = PolicyGate.Labels(key),
        ChainId = chainId,
        Contract = contract,
    };

    /// <summary>
    /// An EIP-712 request: the venue operation when its domain (chainId, verifyingContract) and primaryType name a venue
    /// profile's typed-data struct (<see cref="VenueRegistry.ClassifyTypedData"/>; a document that names one but does
    /// not match it exactly is <c>unknown</c>, denied), else <c>typed-data</c> with the domain's chainId and
    /// verifyingContract when it names them.
    /// </summary>
    public static OperationRequest ForTypedData(Principal principal, KeyRecord key, JsonElement typed, VenueRegistry venues)
    {
        ArgumentNullException.ThrowIfNull(venues);
        if (venues.ClassifyTypedData(typed) is { } venueOperation)
        {
            return venueOperation.ToRequest(principal, key.Id, PolicyGate.Labels(key));
        }

        long? chainId = null;
        string? contract = null;
        if (typed.ValueKind == JsonValueKind.Object && typed.TryGetProperty("domain", out JsonElement domain) && domain.ValueKind == JsonValueKind.Object)
        {
            if (domain.TryGetProperty("chainId", out JsonElement c))
            {
                if (c.ValueKind == JsonValueKind.Number && c.TryGetInt64(out long n))
                {
                    chainId = n;
                }
                else if (c.ValueKind == JsonValueKind.String && c.GetString() is { } s && long.TryParse(s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? s[2..] : s,
                    s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? System.Globalization.NumberStyles.AllowHexSpecifier : System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out long m))
                {
                    chainId = m;
                }
            }

            if (domain.TryGetProperty("verifyingContract", out JsonElement v) && v.ValueKind == JsonValueKind.String && PolicyValue.TryNormalizeAddress(v.GetString(), out string a))
            {
                contract = a;
            }
        }

        return Request(principal, key, OperationKind.TypedData, chainId, contract);
    }

    /// <summary>An eth_signTransaction request classified against the venue profiles; unclassifiable → raw-digest.</summary>
    public static OperationRequest ForTransaction(Principal principal, KeyRecord key, VenueRegistry venues, long chainId, byte[]? to, byte[] data, BigInteger value)
    {
        ArgumentNullException.ThrowIfNull(venues);
        string? toHex = to is null ? null : "0x" + Convert.ToHexStringLower(to);
        ClassifiedOperation c = venues.Classify(chainId, toHex, data, value);
        if (c.Operation == OperationKind.Unknown)
        {
            return Request(principal, key, OperationKind.RawDigest, chainId, toHex);
        }

        return c.ToRequest(principal, key.Id, PolicyGate.Labels(key));
    }
}
