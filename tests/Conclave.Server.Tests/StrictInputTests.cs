using System.Net;
using System.Text.Json.Nodes;

namespace Conclave.Server.Tests;

/// <summary>
/// Strict request bodies and the wording of input errors (issue 20: bug 3 and the error-wording frictions; issue 14:
/// labels checked before a DKG), on a server whose nodes never start.
/// </summary>
public sealed class StrictInputTests(NodelessServer s) : IClassFixture<NodelessServer>
{
    private const string P = "https://conclave.dev/problems/";

    private static void AssertProblem((HttpStatusCode Status, JsonNode? Body, string Text, HttpResponseMessage Response) r, HttpStatusCode status, string type, params string[] detailContains)
    {
        Assert.True(r.Status == status, $"{(int)r.Status}: {r.Text}");
        Assert.Equal("application/problem+json", r.Response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(P + type, r.Body!["type"]!.GetValue<string>());
        string detail = r.Body!["detail"]!.GetValue<string>();
        foreach (string d in detailContains)
        {
            Assert.Contains(d, detail, StringComparison.Ordinal);
        }

        // No .NET type names in what a user reads.
        foreach (string leak in new[] { "System.", "Nullable", "Int32", "Int64", "Conclave.", "Dictionary`" })
        {
            Assert.DoesNotContain(leak, r.Text, StringComparison.Ordinal);
        }
    }

    private Task<(HttpStatusCode Status, JsonNode? Body, string Text, HttpResponseMessage Response)> Post(string path, string json) => s.SendAsync(HttpMethod.Post, path, json);

    private async Task<string> CreateEd25519()
    {
        string name = "ed-" + Guid.NewGuid().ToString("N")[..8];
        var r = await Post("/v1/keys", $$"""{"name":"{{name}}","scheme":"ed25519"}""");
        Assert.True(r.Status == HttpStatusCode.Created, r.Text);
        return name;
    }

    [Fact]
    public async Task UnknownField_IsRefusedNamingIt_AndNothingIsCreated()
    {
        var r = await Post("/v1/keys", """{"name":"typo-1","scheme":"frost-ed25519","treshold":3}""");
        AssertProblem(r, HttpStatusCode.BadRequest, "invalid-request", "'treshold'");
        Assert.Equal(HttpStatusCode.NotFound, (await s.SendAsync(HttpMethod.Get, "/v1/keys/typo-1")).Status);

        // Names are case-sensitive camelCase: "Name" is not "name".
        AssertProblem(await Post("/v1/keys", """{"Name":"typo-2","scheme":"ed25519"}"""), HttpStatusCode.BadRequest, "invalid-request", "'Name'");

        string ed = await CreateEd25519();
        AssertProblem(await Post($"/v1/keys/{ed}/sign", """{"message":"00","mesage":"00"}"""), HttpStatusCode.BadRequest, "invalid-request", "'mesage'");
        AssertProblem(await Post($"/v1/keys/{ed}/sign/batch", """{"items":[{"message":"00","pth":"0"}]}"""), HttpStatusCode.BadRequest, "invalid-request", "pth");
        AssertProblem(await Post($"/v1/keys/{ed}/derive", """{"path":"0","hardened":true}"""), HttpStatusCode.BadRequest, "invalid-request", "'hardened'");
        AssertProblem(await Post($"/v1/keys/{ed}/reshare", """{"threshold":2,"participants":3,"nodes":[1]}"""), HttpStatusCode.BadRequest, "invalid-request", "'nodes'");
    }

    [Fact]
    public async Task DuplicateField_IsRefusedNamingIt()
    {
        var r = await Post("/v1/keys", """{"name":"dup-1","name":"dup-2","scheme":"ed25519"}""");
        AssertProblem(r, HttpStatusCode.BadRequest, "invalid-request", "'name'", "more than once");
        Assert.Equal(HttpStatusCode.NotFound, (await s.SendAsync(HttpMethod.Get, "/v1/keys/dup-1")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await s.SendAsync(HttpMethod.Get, "/v1/keys/dup-2")).Status);
        AssertProblem(await Post("/v1/keys", """{"name":"dup-3","scheme":"ed25519","labels":{"a":"1","a":"2"}}"""), HttpStatusCode.BadRequest, "invalid-request", "more than once");

        // JSON-RPC too: which "method" or "params" would count is ambiguous.
        var rpc = await Post("/rpc", """{"jsonrpc":"2.0","id":1,"method":"eth_accounts","method":"eth_chainId"}""");
        Assert.Equal(-32700, rpc.Body!["error"]!["code"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("\"2\"")]
    [InlineData("2.5")]
    [InlineData("2147483648")]
    [InlineData("-99999999999999999999")]
    [InlineData("true")]
    public async Task WrongType_IsRefusedNamingTheField(string threshold)
    {
        var r = await Post("/v1/keys", $$"""{"name":"type-1","scheme":"frost-ed25519","threshold":{{threshold}}}""");
        AssertProblem(r, HttpStatusCode.BadRequest, "malformed-json", "'threshold'", "integer");
        Assert.Equal(HttpStatusCode.NotFound, (await s.SendAsync(HttpMethod.Get, "/v1/keys/type-1")).Status);
    }

    [Fact]
    public async Task WrongType_NeverEchoesTheValue()
    {
        const string marker = "SECRET-MARKER-51c2";
        var r = await Post("/v1/keys", "{\"name\":\"type-2\",\"scheme\":\"ed25519\",\"participants\":\"" + marker + "\"}");
        AssertProblem(r, HttpStatusCode.BadRequest, "malformed-json", "'participants'");
        Assert.DoesNotContain(marker, r.Text, StringComparison.Ordinal);
        string ed = await CreateEd25519();
        var m = await Post($"/v1/keys/{ed}/sign", "{\"message\":{\"x\":\"" + marker + "\"}}");
        AssertProblem(m, HttpStatusCode.BadRequest, "malformed-json", "'message'");
        Assert.DoesNotContain(marker, m.Text, StringComparison.Ordinal);
        var l = await Post("/v1/keys", """{"name":"type-3","scheme":"ed25519","labels":{"desk":7}}""");
        AssertProblem(l, HttpStatusCode.BadRequest, "malformed-json", "labels.desk");
    }

    [Fact]
    public async Task Name_InvalidIsNotMissing()
    {
        AssertProblem(await Post("/v1/keys", """{"name":"bad name/","scheme":"ed25519"}"""), HttpStatusCode.BadRequest, "invalid-request", "name is invalid");
        AssertProblem(await Post("/v1/keys", """{"scheme":"ed25519"}"""), HttpStatusCode.BadRequest, "invalid-request", "name is required");
    }

    [Fact]
    public async Task Sign_WithNeitherMessageNorDigest_SaysSo()
    {
        string ed = await CreateEd25519();
        AssertProblem(await Post($"/v1/keys/{ed}/sign", "{}"), HttpStatusCode.BadRequest, "wrong-input-kind", "neither \"message\" nor \"digest\"", "send \"message\"");
    }

    [Fact]
    public async Task Threshold_LowerBoundIsTheSameForCreateAndReshare()
    {
        var create = await Post("/v1/keys", """{"name":"low-1","scheme":"frost-ed25519","threshold":1,"participants":3}""");
        AssertProblem(create, HttpStatusCode.BadRequest, "invalid-request", "threshold must be between 2 and participants (3)");
        string ed = await CreateEd25519();
        var reshare = await Post($"/v1/keys/{ed}/reshare", """{"threshold":1,"participants":3}""");
        AssertProblem(reshare, HttpStatusCode.BadRequest, "invalid-request", "threshold must be between 2 and participants (3)");
        AssertProblem(await Post($"/v1/keys/{ed}/reshare", """{"participants":3}"""), HttpStatusCode.BadRequest, "invalid-request", "threshold is required");
    }

    [Fact]
    public async Task QueryParameters_NameTheParameter_WithoutTypeNames()
    {
        AssertProblem(await s.SendAsync(HttpMethod.Get, "/v1/audit?limit=abc"), HttpStatusCode.BadRequest, "invalid-request", "'limit'", "1 to 1000");
        AssertProblem(await s.SendAsync(HttpMethod.Get, "/v1/audit?after=99999999999999999999999"), HttpStatusCode.BadRequest, "invalid-request", "'after'");
        AssertProblem(await s.SendAsync(HttpMethod.Get, "/v1/audit?last=0"), HttpStatusCode.BadRequest, "invalid-request", "'last'");
        Assert.Equal(HttpStatusCode.OK, (await s.SendAsync(HttpMethod.Get, "/v1/audit?limit=5")).Status);
    }

    [Fact]
    public async Task WrongMethod_Is405WithAllow_UnknownRouteStays404()
    {
        var del = await s.SendAsync(HttpMethod.Delete, "/v1/keys");
        AssertProblem(del, HttpStatusCode.MethodNotAllowed, "method-not-allowed", "DELETE");
        Assert.Equal("GET, POST", del.Response.Content.Headers.Allow.Count > 0 ? string.Join(", ", del.Response.Content.Headers.Allow) : string.Join(", ", del.Response.Headers.GetValues("Allow")));
        AssertProblem(await s.SendAsync(HttpMethod.Delete, "/v1/keys/some-key"), HttpStatusCode.MethodNotAllowed, "method-not-allowed");
        AssertProblem(await s.SendAsync(HttpMethod.Put, "/v1/keys/some-key/sign", "{}"), HttpStatusCode.MethodNotAllowed, "method-not-allowed");
        AssertProblem(await s.SendAsync(HttpMethod.Get, "/rpc"), HttpStatusCode.MethodNotAllowed, "method-not-allowed");
        AssertProblem(await s.SendAsync(HttpMethod.Delete, "/v1/nothing-here"), HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task OversizedHeaders_Are431ProblemJson()
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, "/v1/keys");
        req.Headers.Add("X-Filler", new string('a', 40 * 1024));
        using HttpResponseMessage r = await s.Http.SendAsync(req);
        Assert.Equal((HttpStatusCode)431, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        Assert.Contains(P + "headers-too-large", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    /// <summary>
    /// Labels are checked before the DKG: the nodes of this server never start, so a creation that reached the DKG
    /// would fail with a 5xx; a bad label must be a 400 first.
    /// </summary>
    [Fact]
    public async Task Labels_AreCheckedBeforeAnyNodeIsAsked()
    {
        AssertProblem(await Post("/v1/keys", """{"name":"lab-1","scheme":"frost-ed25519","labels":{"bad\u0001key":"x"}}"""), HttpStatusCode.BadRequest, "invalid-request", "labels");
        string many = string.Join(",", Enumerable.Range(0, 65).Select(i => $"\"k{i}\":\"v\""));
        AssertProblem(await Post("/v1/keys", "{\"name\":\"lab-2\",\"scheme\":\"frost-ed25519\",\"labels\":{" + many + "}}"), HttpStatusCode.BadRequest, "invalid-request", "labels");
        AssertProblem(await Post("/v1/keys", "{\"name\":\"lab-3\",\"scheme\":\"frost-ed25519\",\"labels\":{\"k\":\"" + new string('v', 300) + "\"}}"), HttpStatusCode.BadRequest, "invalid-request", "labels");

        // The same request with good labels does go on to the (absent) nodes.
        var ok = await Post("/v1/keys", """{"name":"lab-4","scheme":"frost-ed25519","labels":{"desk":"perps"}}""");
        Assert.True((int)ok.Status >= 500, ok.Text);
    }
}
