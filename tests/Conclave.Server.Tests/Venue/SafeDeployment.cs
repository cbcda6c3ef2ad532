using System.Numerics;
using System.Text;
using System.Text.Json.Nodes;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// Safe 1.4.1 on the test chain from the compiled artifacts of npm @safe-global/safe-contracts 1.4.1 (installed in
/// tests/interop): the Safe singleton and the SafeProxyFactory deployed by an anvil account, then a proxy created with
/// <c>createProxyWithNonce(singleton, setup(owners, threshold, ...), salt)</c>. The calldata is encoded here by hand
/// (Solidity ABI, dynamic arguments in the tail), independently of Conclave's own encoder.
/// </summary>
internal static class SafeDeployment
{
    public const string ZeroAddress = "0x0000000000000000000000000000000000000000";

    private static string ArtifactPath(string relative) =>
        Path.Combine(RepoPaths.Interop, "node_modules", "@safe-global", "safe-contracts", "build", "artifacts", "contracts", relative);

    private static string Bytecode(string relative)
    {
        string path = ArtifactPath(relative);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"Safe artifact not found at {path}: run `npm ci` in tests/interop");
        }

        return JsonNode.Parse(File.ReadAllText(path))!["bytecode"]!.GetValue<string>();
    }

    /// <summary>Deploys the Safe singleton and the proxy factory from their artifacts; their addresses.</summary>
    public static async Task<(string Singleton, string Factory)> DeployContractsAsync(AnvilChain chain, string deployer) =>
        (await chain.DeployAsync(deployer, Bytecode(Path.Combine("Safe.sol", "Safe.json"))),
         await chain.DeployAsync(deployer, Bytecode(Path.Combine("proxies", "SafeProxyFactory.sol", "SafeProxyFactory.json"))));

    /// <summary>Deploys a singleton, a factory and a Safe proxy with these owners and threshold; the proxy's address.</summary>
    public static async Task<string> DeployAsync(AnvilChain chain, string deployer, IReadOnlyList<string> owners, int threshold)
    {
        (string singleton, string factory) = await DeployContractsAsync(chain, deployer);

        // setup(address[] owners, uint256 threshold, address to, bytes data, address fallbackHandler, address paymentToken,
        //       uint256 payment, address paymentReceiver): 8 head words, then owners (length, words) and data (length 0).
        var setup = new StringBuilder(Convert.ToHexStringLower(Abi.Selector("setup(address[],uint256,address,bytes,address,address,uint256,address)")));
        setup.Append(Abi.Words(8 * 32, threshold, ZeroAddress, (8 * 32) + 32 + (32 * owners.Count), ZeroAddress, ZeroAddress, 0, ZeroAddress));
        setup.Append(Abi.Words(owners.Count));
        foreach (string o in owners)
        {
            setup.Append(Abi.Words(o));
        }

        setup.Append(Abi.Words(0));
        byte[] initializer = Convert.FromHexString(setup.ToString());

        // createProxyWithNonce(address singleton, bytes initializer, uint256 saltNonce).
        string create = Abi.Call("createProxyWithNonce(address,bytes,uint256)", singleton, 3 * 32, 17) + Abi.Words(initializer.Length) + Padded(initializer);
        // The factory returns the proxy's address (CREATE2: the same in a call and in the transaction that follows).
        string proxy = Abi.Address(await chain.EthCallAsync(factory, create, deployer));
        await chain.SendFromAsync(deployer, factory, create);
        if ((await chain.Call("eth_getCode", proxy, "latest"))!.GetValue<string>().Length <= 2)
        {
            throw new InvalidOperationException($"no Safe proxy was created at {proxy}");
        }

        return proxy;
    }

    /// <summary>execTransaction(to, value, data, 0, 0, 0, 0, 0, 0, signatures) calldata, encoded independently of Conclave.</summary>
    public static string ExecTransaction(string to, BigInteger value, byte[] data, byte[] signatures)
    {
        int dataTail = 32 + (32 * ((data.Length + 31) / 32));
        return Abi.Call("execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
                to, value, 10 * 32, 0, 0, 0, 0, ZeroAddress, ZeroAddress, (10 * 32) + dataTail)
            + Abi.Words(data.Length) + Padded(data) + Abi.Words(signatures.Length) + Padded(signatures);
    }

    private static string Padded(byte[] bytes)
    {
        byte[] padded = new byte[32 * ((bytes.Length + 31) / 32)];
        bytes.CopyTo(padded, 0);
        return Convert.ToHexStringLower(padded);
    }
}
