using System.Text;
using System.Text.Json;
using Conclave.Node.Config;
using Conclave.Policy;
using Conclave.Policy.Documents;
using Conclave.Policy.Venues;
using Conclave.Server.Api;
using Conclave.Server.Config;
using Conclave.Server.Policy;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Policy;

namespace Conclave.Server.Hosting;

/// <summary>Policy pieces read from server.json at start: the starter policy (venue profiles: <see cref="VenueProfileSource.InstallConfiguredAsync"/>).</summary>
internal static class PolicySetup
{
    /// <summary>
    /// Reads a file server.json names (<paramref name="what"/>) and parses it; a file that cannot be read or does not
    /// parse is a <see cref="ConfigException"/> naming the setting and the path.
    /// </summary>
    public static (string Text, T Value) ReadConfigured<T>(string path, string what, Func<string, T> parse)
    {
        try
        {
            string text = File.ReadAllText(path);
            return (text, parse(text));
        }
        catch (IOException e)
        {
            throw new ConfigException($"{what} {path} cannot be read: {e.Message}");
        }
        catch (PolicyFormatException e)
        {
            throw new ConfigException($"{what} {path} is invalid: {e.Message}");
        }
    }

    /// <summary>Installs server.json's starterPolicy when the store has no policy with its id (once; later edits are kept).</summary>
    public static async Task InstallStarterPolicyAsync(ServerConfig config, IConclaveStore store, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(config.StarterPolicy))
        {
            return;
        }

        (string text, PolicyDocument doc) = ReadConfigured(config.Resolve(config.StarterPolicy), "starterPolicy", PolicyDocument.Parse);

        if (await store.Policies.GetAsync(doc.Id, null, ct).ConfigureAwait(false) is not null)
        {
            return;
        }

        if (await store.Policies.PutAsync(new StoredPolicy(doc.Id, doc.Version, doc.Hash, PolicyMode.Enforce, Encoding.UTF8.GetBytes(text), "server.json starterPolicy",
            DateTimeOffset.UtcNow), ct).ConfigureAwait(false))
        {
            await store.Audit.AppendAsync(new AuditEntryInput("coordinator", "policy.put", null, null, "allow", $"{doc.Id} v{doc.Version} enforce {doc.Hash} (starter policy)"), ct)
                .ConfigureAwait(false);
        }
    }

    /// <summary>How a held POST /v1/keys/{name}/sign request is signed once approved.</summary>
    public static HeldRequestExecutor SignExecutor(KeyService keys) => async (key, body, policy, ct) =>
    {
        SignRequest request = JsonSerializer.Deserialize(body, ApiJsonContext.Default.SignRequest) ?? new SignRequest();
        SignResponse r = await keys.SignAsync(key, request, ct).ConfigureAwait(false);
        return JsonSerializer.SerializeToUtf8Bytes(r with { Policy = policy }, ApiJsonContext.Default.SignResponse);
    };
}
