using System.Text.Json.Nodes;
using Conclave.Client;

namespace Conclave.Keeper;

/// <summary>A transaction Conclave signed and the node accepted.</summary>
internal sealed record SentTransaction(string Hash, string Nonce, string From);

/// <summary>
/// Typed venue operations through Conclave: <c>POST /v1/keys/{key}/ethereum/transactions</c>
/// <c>{"operation","venue","args","send":true}</c> (docs/VENUE.md). Conclave builds the calldata from the venue profile,
/// decides by policy as this agent, fills nonce, gas and fees, has the threshold key sign and sends the transaction.
/// </summary>
internal sealed class VenueOperations(ConclaveClient conclave, string key, string venue)
{
    /// <summary>The problem type of a transaction the chain refused (a revert in gas estimation, a rejected send).</summary>
    public const string ChainRefused = "https://conclave.dev/problems/chain-refused";

    private readonly string _path = $"v1/keys/{ConclaveClient.Segment(key)}/ethereum/transactions";

    public async Task<SentTransaction> SendAsync(string operation, JsonObject args, CancellationToken ct)
    {
        var body = new JsonObject { ["operation"] = operation, ["venue"] = venue, ["args"] = args, ["send"] = true };
        JsonNode answer = await conclave.SendJsonAsync(HttpMethod.Post, _path, body.ToJsonString(), ct).ConfigureAwait(false)
            ?? throw new ConclaveApiException("Conclave answered no transaction");
        if (answer["sent"]?.GetValue<bool>() != true)
        {
            throw new ConclaveApiException("Conclave signed but did not send the transaction");
        }

        return new SentTransaction(Text(answer, "hash"), answer["nonce"]?.ToString() ?? "?", Text(answer, "from"));
    }

    private static string Text(JsonNode answer, string member) =>
        answer[member]?.GetValue<string>() ?? throw new ConclaveApiException($"Conclave's answer has no {member}");
}
