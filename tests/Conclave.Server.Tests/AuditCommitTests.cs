using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Conclave.Server.Tests;

/// <summary>
/// Issue 18: a signing request's intent entry, its policy decision and the coordinator's round entry are committed
/// together (Api.RequestAudit), before any node is asked for a share — one fsync instead of three in sequence.
/// </summary>
[Collection("api")]
public sealed class AuditCommitTests(ApiCluster c)
{
    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_frost_signing_requests_intent_decision_and_round_entry_are_consecutive_and_one_commit_under_concurrency()
    {
        string name = "commit-" + Guid.NewGuid().ToString("N")[..8];
        using (HttpResponseMessage created = await c.Http.PostAsync("/v1/keys", Json($$"""{"name":"{{name}}","scheme":"frost-secp256k1"}""")))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        long head = (await c.Http.GetFromJsonAsync<JsonNode>("/v1/audit/verify"))!["headSeq"]!.GetValue<long>();
        DeterministicRandomSource draw = TestSeed.For("messages");
        byte[][] messages = [.. Enumerable.Range(0, 12).Select(_ => draw.Bytes(32))];
        string path = $"/v1/keys/{name}/sign";
        await Task.WhenAll(messages.Select(async m =>
        {
            using HttpResponseMessage r = await c.Http.PostAsync(path, Json($$"""{"message":"{{Convert.ToHexStringLower(m)}}"}"""));
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }));

        List<JsonNode> entries = [];
        for (long after = head; ;)
        {
            JsonArray page = (await c.Http.GetFromJsonAsync<JsonNode>($"/v1/audit?after={after}&limit=1000"))!["entries"]!.AsArray();
            entries.AddRange(page.Select(e => e!));
            if (page.Count < 1000)
            {
                break;
            }

            after = page[^1]!["seq"]!.GetValue<long>();
        }

        var bySeq = entries.ToDictionary(e => e["seq"]!.GetValue<long>());
        foreach (byte[] m in messages)
        {
            string body = $$"""{"message":"{{Convert.ToHexStringLower(m)}}"}""";
            string intentHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("POST\0" + path + "\0" + body)));
            string roundHash = Convert.ToHexStringLower(SHA256.HashData(m));
            JsonNode intent = entries.Single(e => e["requestHash"]?.GetValue<string>() == intentHash && e["result"]!.GetValue<string>() == "accepted");
            JsonNode round = entries.Single(e => e["action"]!.GetValue<string>() == "frost.sign" && e["requestHash"]?.GetValue<string>() == roundHash);
            long seq = intent["seq"]!.GetValue<long>();
            JsonNode decision = bySeq[seq + 1];

            // intent, then the allow decision for this key, then the round: consecutive, and one transaction (one time).
            Assert.Equal("policy.decide", decision["action"]!.GetValue<string>());
            Assert.Equal("allow", decision["decision"]!.GetValue<string>());
            Assert.Equal(intent["keyId"]!.GetValue<string>(), decision["keyId"]!.GetValue<string>());
            Assert.Equal(seq + 2, round["seq"]!.GetValue<long>());
            Assert.Equal(intent["time"]!.GetValue<DateTimeOffset>(), decision["time"]!.GetValue<DateTimeOffset>());
            Assert.Equal(intent["time"]!.GetValue<DateTimeOffset>(), round["time"]!.GetValue<DateTimeOffset>());
        }
    }
}
