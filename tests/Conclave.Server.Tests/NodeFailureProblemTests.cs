using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Server.Api;
using Conclave.Server.Coordinator;
using Grpc.Core;

namespace Conclave.Server.Tests;

/// <summary>
/// A signer node that fails a key generation or rotation step is a typed problem, never a 500: under full-suite load a
/// DKG round's node call failed and `POST /v1/keys` answered 500 internal (EthereumTransactionTests and UpCommandTests,
/// 2026-12-01), because no mapping knew <see cref="NodeCallException"/>. The nodeless server's three nodes are
/// configured but none listens, so every key generation fails at its first node call.
/// </summary>
public sealed class NodeFailureProblemTests(NodelessServer s) : IClassFixture<NodelessServer>
{
    [Theory]
    [InlineData("frost-secp256k1")]
    [InlineData("frost-ed25519")]
    [InlineData("ecdsa-dkls23")]
    public async Task KeyGeneration_WithTheNodesUnreachable_Is503_AndLeavesNoKey(string scheme)
    {
        string name = "unreachable-" + Guid.NewGuid().ToString("N")[..8];
        using var content = new StringContent($$"""{"name":"{{name}}","scheme":"{{scheme}}"}""", Encoding.UTF8, "application/json");
        using HttpResponseMessage r = await s.Http.PostAsync("/v1/keys", content);
        string text = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout, $"{(int)r.StatusCode} {text}");
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        JsonNode problem = JsonNode.Parse(text)!;
        Assert.NotEqual("https://conclave.dev/problems/internal", problem["type"]!.GetValue<string>());
        Assert.Contains("signer node", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        using HttpResponseMessage get = await s.Http.GetAsync($"/v1/keys/{name}");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact]
    public void NodeCallFailures_MapToTypedProblems_WithoutTheNodesText()
    {
        ProblemBody late = ProblemTypes.FromException(new NodeCallException(2, StatusCode.DeadlineExceeded, "node-side detail", null, null));
        Assert.Equal((504, ProblemTypes.Timeout), (late.Status, late.Type));
        ProblemBody down = ProblemTypes.FromException(new NodeCallException(3, StatusCode.Unavailable, "node-side detail", null, null));
        Assert.Equal((503, ProblemTypes.QuorumUnavailable), (down.Status, down.Type));
        ProblemBody refused = ProblemTypes.FromException(new NodeCallException(1, StatusCode.FailedPrecondition, "node-side detail", null, null));
        Assert.Equal((503, ProblemTypes.QuorumUnavailable), (refused.Status, refused.Type));
        ProblemBody blamed = ProblemTypes.FromException(new NodeCallException(1, StatusCode.PermissionDenied, "node-side detail", 3, null));
        Assert.Equal((502, ProblemTypes.NodeMisbehaved), (blamed.Status, blamed.Type));
        Assert.Equal([3u], blamed.Culprits);
        Assert.All(new[] { late, down, refused, blamed }, p => Assert.DoesNotContain("node-side detail", p.Detail, StringComparison.Ordinal));
    }
}
