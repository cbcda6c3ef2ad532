using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Conclave.Server.Config;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// The example venue (examples/venue) on a fresh chain and a real 2-of-3 cluster: MarginEngine deployed from its
/// committed artifact by anvil's first account (the admin, also the price feeder), the collateral pool funded with
/// 50 ether, the server started with the committed venue profile examples/venue/profile.json (whose contract address is
/// where the admin's first deployment lands) and the test SoftHSM token, and a keeper: an <c>ecdsa-dkls23</c> key of the
/// cluster granted the keeper role.
/// </summary>
public sealed class ExampleVenue : IAsyncLifetime
{
    public const string VenueName = "example-venue";

    private readonly bool _allowAgents;
    private readonly bool _safeContracts;

    public ExampleVenue()
        : this(allowAgents: false)
    {
    }

    /// <param name="allowAgents">Adds to the starter policy a rule letting agent principals (in their scope) send the
    /// venue's <c>liquidate</c> and <c>settle</c> (the keeper agents of examples/keeper).</param>
    /// <param name="safeContracts">Deploys the Safe 1.4.1 singleton and proxy factory before the server starts and names
    /// them in server.json <c>safeContracts</c> for chain 31337; chain <see cref="ChainWithoutSafeContracts"/> gets an
    /// upstream (the same anvil) and no Safe contracts.</param>
    internal ExampleVenue(bool allowAgents, bool safeContracts = false)
    {
        _allowAgents = allowAgents;
        _safeContracts = safeContracts;
        Cluster = new VenueCluster(DeployAsync);
    }

    /// <summary>A chain id server.json gives an upstream but no Safe contracts (with <c>safeContracts</c>).</summary>
    public const long ChainWithoutSafeContracts = 31338;

    /// <summary>The Safe singleton and proxy factory named in server.json (with <c>safeContracts</c>).</summary>
    public (string Singleton, string Factory) SafeAddresses { get; private set; }

    /// <summary>The starter-policy rule <see cref="ExampleVenue(bool)"/> adds.</summary>
    public const string AgentRule = """{"id":"keeper-agents","effect":"allow","match":{"roles":["agent"],"operations":["liquidate","settle"],"venues":["example-venue"]}}""";

    public VenueCluster Cluster { get; }

    public AnvilChain Chain => Cluster.Chain;

    public HttpClient Http => Cluster.Http;

    /// <summary>MarginEngine's address (lowercase).</summary>
    public string Engine { get; private set; } = "";

    /// <summary>anvil's unlocked accounts; [0] is the venue's admin and price feeder, the others are traders.</summary>
    public string[] Accounts { get; private set; } = [];

    public string Admin => Accounts[0];

    public string KeeperName { get; private set; } = "";

    public string KeeperAddress { get; private set; } = "";

    /// <summary>The keeper key's id (what policy rules name under <c>keys</c>).</summary>
    public string KeeperId { get; private set; } = "";

    public static string VenueDir => Path.Combine(RepoPaths.Root, "examples", "venue");

    public static JsonNode Artifact(string contract) => JsonNode.Parse(File.ReadAllText(Path.Combine(VenueDir, "artifacts", contract + ".json")))!;

    private static string Env(string name) => Environment.GetEnvironmentVariable(name)
        ?? throw new InvalidOperationException($"{name} is not set: run the tests through ./test.sh, or eval \"$(bash scripts/test-services/softhsm.sh)\" first");

    private async Task DeployAsync(AnvilChain chain, ServerConfig config)
    {
        Accounts = await chain.AccountsAsync();
        Engine = await chain.DeployAsync(Admin, Artifact("MarginEngine")["bytecode"]!.GetValue<string>());
        string profile = Path.Combine(VenueDir, "profile.json");
        string profiled = JsonNode.Parse(File.ReadAllText(profile))!["contract"]!.GetValue<string>();
        if (!string.Equals(profiled, Engine, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"MarginEngine was deployed at {Engine}, but examples/venue/profile.json names {profiled}");
        }

        config.VenueProfiles = [profile];
        if (_allowAgents)
        {
            string starter = config.Resolve(config.StarterPolicy ?? throw new InvalidOperationException("the cluster's server.json names no starter policy"));
            JsonNode policy = JsonNode.Parse(File.ReadAllText(starter))!;
            policy["rules"]!.AsArray().Add(JsonNode.Parse(AgentRule));
            File.WriteAllText(starter, policy.ToJsonString());
        }

        config.RequestTimeoutSeconds = 120; // the keeper's DKLs23 key generation took over 30 s on a loaded 2-core machine
        // The server's PKCS#11 token (SoftHSM in tests) for the Safe owner key of scheme hsm-ecdsa-secp256k1.
        config.Hsm = new Conclave.Node.Config.HsmSettings
        {
            ModulePath = Env("CONCLAVE_TEST_HSM_MODULE"),
            TokenLabel = Env("CONCLAVE_TEST_HSM_TOKEN"),
            PinFile = Env("CONCLAVE_TEST_HSM_PIN_FILE"),
            SessionPoolSize = 2,
        };
        if (_safeContracts)
        {
            SafeAddresses = await SafeDeployment.DeployContractsAsync(chain, Accounts[9]); // another account: the engine's address stays the profile's
            config.SafeContracts = new() { ["31337"] = new Conclave.Server.Config.SafeContracts { Singleton = SafeAddresses.Singleton, ProxyFactory = SafeAddresses.Factory } };
            config.Upstreams![ChainWithoutSafeContracts.ToString(System.Globalization.CultureInfo.InvariantCulture)] = chain.Url.ToString();
        }

        await chain.SendFromAsync(Admin, Engine, Abi.Call("setPriceFeeder(address,bool)", Admin, true));
        await chain.SendFromAsync(Admin, Engine, Abi.Call("fundPool()"), Abi.Wei("50"));
    }

    public async Task InitializeAsync()
    {
        await Cluster.InitializeAsync();
        (KeeperName, KeeperAddress, KeeperId) = await CreateFundedKeyAsync("ecdsa-dkls23");
        await Chain.SendFromAsync(Admin, Engine, Abi.Call("setKeeper(address,bool)", KeeperAddress, true));
    }

    public Task DisposeAsync() => Cluster.DisposeAsync();

    /// <summary>A new key of the cluster with 100 ether on the chain: its name, EIP-55 address and id.</summary>
    public async Task<(string Name, string Address, string Id)> CreateFundedKeyAsync(string scheme)
    {
        string name = "venue-" + Guid.NewGuid().ToString("N")[..8];
        using var content = new StringContent($$"""{"name":"{{name}}","scheme":"{{scheme}}"}""", Encoding.UTF8, "application/json");
        using HttpResponseMessage r = await Http.PostAsync("/v1/keys", content);
        string text = await r.Content.ReadAsStringAsync();
        if (r.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"creating a {scheme} key: {(int)r.StatusCode} {text}");
        }

        JsonNode key = JsonNode.Parse(text)!;
        string address = key["addresses"]!["ethereum"]!.GetValue<string>();
        await Chain.FundAsync(address);
        return (name, address, key["id"]!.GetValue<string>());
    }

    /// <summary>The oracle price, set by the admin (the price feeder).</summary>
    public Task SetPriceAsync(string ether) => Chain.SendFromAsync(Admin, Engine, Abi.Call("setPrice(uint256)", Abi.Wei(ether)));
}
