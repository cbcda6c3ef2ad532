using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Conclave.Chains.Ethereum;
using Conclave.Client;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;

namespace Conclave.Server.Tests;

/// <summary>
/// The examples in docs/API.md are the ones tested: the ethers v6 snippet is taken from the document and run with
/// Node against a server; the C# example is compared line by line with <see cref="CSharpExampleAsync"/> below, which
/// compiles with this project and runs here. Also: no document points to a file the repository does not hold.
/// </summary>
public sealed partial class DocsTests(NodelessServer s) : IClassFixture<NodelessServer>
{
    private static string Doc(string name) => File.ReadAllText(Path.Combine(RepoPaths.Root, "docs", name));

    /// <summary>The fenced block of <paramref name="language"/> that follows the marker comment <c>&lt;!-- example: NAME --&gt;</c>.</summary>
    private static string Block(string doc, string name, string language)
    {
        Match m = Regex.Match(doc, $@"<!-- example: {Regex.Escape(name)} -->\s*```{language}\n(.*?)```", RegexOptions.Singleline);
        Assert.True(m.Success, $"docs: no '{name}' example");
        return m.Groups[1].Value;
    }

    [Fact]
    public async Task EthersSnippet_FromApiMd_SignsThroughRpc()
    {
        var created = await s.SendAsync(HttpMethod.Post, "/v1/keys", """{"name":"ethers-doc","scheme":"ecdsa-secp256k1"}""");
        Assert.True(created.Status == System.Net.HttpStatusCode.Created, created.Text);
        string address = created.Body!["addresses"]!["ethereum"]!.GetValue<string>();

        string code = Block(Doc("API.md"), "ethers", "js");
        Assert.Contains("setHeader('Authorization'", code, StringComparison.Ordinal);
        Assert.Contains("staticNetwork", code, StringComparison.Ordinal);
        JsonNode result = NodeInterop.Run("docsnippet", [new { code, env = new Dictionary<string, string> { ["CONCLAVE_URL"] = s.BaseUrl, ["CONCLAVE_TOKEN"] = s.Token } }])[0]!;
        string[] printed = result["lines"]!.AsArray().Select(l => l!.GetValue<string>()).ToArray();
        string[] words = Assert.Single(printed).Split(' ');
        Assert.Equal(address, words[0]);
        byte[] sig = Convert.FromHexString(words[1][2..]);
        Assert.True(EcdsaSecp256k1.TryRecover(PersonalMessage.Hash("hello from a bot"u8), sig.AsSpan(0, 64), sig[64] - 27, out Secp256k1Point pk));
        Assert.Equal(address, EthereumAddress.FromPublicKey(pk.ToCompressed()));
    }

    [Fact]
    public async Task CSharpExample_InApiMd_IsTheOneThatCompilesAndRunsHere()
    {
        string[] doc = Lines(Block(Doc("API.md"), "csharp-client", "csharp"));
        string source = File.ReadAllText(Path.Combine(RepoPaths.Root, "tests", "Conclave.Server.Tests", "DocsTests.cs"));
        Match m = Regex.Match(source, @"// example:begin\n(.*?)// example:end", RegexOptions.Singleline);
        Assert.Equal(Lines(m.Groups[1].Value), doc);
        Assert.InRange(doc.Length, 3, 10);

        string[] printed = (await CSharpExampleAsync(s.BaseUrl, s.Token)).Split(' ');
        Assert.Equal("doc-key", printed[0]);
        Assert.True(SignatureSchemes.Ed25519.Verify(Convert.FromHexString(printed[1]), [0xca, 0xfe], Convert.FromHexString(printed[2])));
    }

    private static string[] Lines(string text) =>
        [.. text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("using Conclave.", StringComparison.Ordinal)
            && !l.StartsWith("string url =", StringComparison.Ordinal) && !l.StartsWith("string token =", StringComparison.Ordinal))];

    /// <summary>The docs/API.md example (between the markers), with its two inputs as parameters.</summary>
    private static async Task<string> CSharpExampleAsync(string url, string token)
    {
        TextWriter original = Console.Out;
        var output = new StringWriter();
        Console.SetOut(output);
        try
        {
            // example:begin
            using var client = new ConclaveClient(url, token);
            KeyInfo key = await client.CreateKeyAsync(new CreateKeyRequest("doc-key", "ed25519"));
            SignResult signed = await client.SignAsync(key.Name, new SignRequest(Message: "cafe"));
            Console.WriteLine($"{key.Name} {key.PublicKey} {signed.Signature}");
            // example:end
        }
        finally
        {
            Console.SetOut(original);
        }

        return output.ToString().Trim();
    }

    /// <summary>Every path a document names as a file of the repository (docs/X.md, a top-level .md) exists.</summary>
    [Fact]
    public void Docs_ReferOnlyToFilesTheRepositoryHolds()
    {
        string root = RepoPaths.Root;
        string[] files = [Path.Combine(root, "README.md"), .. Directory.GetFiles(Path.Combine(root, "docs"), "*.md")];
        foreach (string file in files)
        {
            string text = File.ReadAllText(file);
            foreach (Match m in MarkdownName().Matches(text))
            {
                string name = m.Groups[1].Value;
                bool exists = File.Exists(Path.Combine(root, "docs", name)) || File.Exists(Path.Combine(root, name));
                Assert.True(exists, $"{Path.GetFileName(file)} refers to {name}, which the repository does not hold");
            }
        }
    }

    [GeneratedRegex(@"(?<![\w/.-])((?:[\w.-]+/)*[A-Z][A-Z0-9-]+\.md)\b")]
    private static partial Regex MarkdownName();
}
