using System.Numerics;
using Conclave.Chains.Ethereum.Safe;

namespace Conclave.Chains.Tests;

/// <summary>
/// The CREATE2 address of a Safe proxy (EIP-1014) and the factory calldata. The address derivation is checked against
/// EIP-1014's own examples; the whole deployment (initializer, salt, calldata, predicted address) is checked on a real
/// chain by the server's Safe deployment test, against the ProxyCreation event and the Safe's getOwners/getThreshold.
/// </summary>
public sealed class SafeProxyDeploymentTests
{
    [Theory]
    // EIP-1014 "Examples" 0, 1, 5 and 6 (deployer, salt, init code → address).
    [InlineData("0000000000000000000000000000000000000000", "0000000000000000000000000000000000000000000000000000000000000000", "00", "4d1a2e2bb4f88f0250f26ffff098b0b30b26bf38")]
    [InlineData("deadbeef00000000000000000000000000000000", "0000000000000000000000000000000000000000000000000000000000000000", "00", "b928f69bb1d91cd65274e3c79d8986362984fda3")]
    [InlineData("00000000000000000000000000000000deadbeef", "00000000000000000000000000000000000000000000000000000000cafebabe", "deadbeef", "60f3f640a8508fc6a86d45df051962668e1e8ac7")]
    [InlineData("0000000000000000000000000000000000000000", "0000000000000000000000000000000000000000000000000000000000000000", "", "e33c0c7f7df4809055c3eba6c09cfe4baf1bd9e0")]
    public void Create2_addresses_match_the_EIP_1014_examples(string deployer, string salt, string initCode, string expected)
    {
        byte[] hash = Conclave.Crypto.Hashing.Keccak256.HashData(Convert.FromHexString(initCode));
        Assert.Equal(expected, Convert.ToHexStringLower(SafeProxyDeployment.Create2Address(Convert.FromHexString(deployer), Convert.FromHexString(salt), hash)));
    }

    [Fact]
    public void The_initializer_and_the_factory_call_are_laid_out_as_the_ABI_says()
    {
        byte[] singleton = Enumerable.Repeat((byte)0x11, 20).ToArray();
        byte[][] owners = [Enumerable.Repeat((byte)0x22, 20).ToArray(), Enumerable.Repeat((byte)0x33, 20).ToArray()];
        var d = new SafeProxyDeployment(singleton, owners, 2, new byte[20], new BigInteger(17));

        // setup: selector, 8 head words, owners (length 2, two words), data (length 0).
        byte[] init = d.Initializer.ToArray();
        Assert.Equal(4 + (8 * 32) + (3 * 32) + 32, init.Length);
        Assert.Equal(256, Word(init, 4, 0));
        Assert.Equal(2, Word(init, 4, 1));
        Assert.Equal(256 + 96, Word(init, 4, 3)); // data's offset: after the owners array
        Assert.Equal(2, Word(init, 4, 8));
        Assert.Equal(owners[1], init.AsSpan(4 + (10 * 32) + 12, 20).ToArray());
        Assert.Equal(0, Word(init, 4, 11));

        // createProxyWithNonce: singleton, offset 96, salt nonce 17, then the initializer's length and padded bytes.
        byte[] call = d.CreateProxyWithNonceCalldata();
        Assert.Equal(singleton, call.AsSpan(4 + 12, 20).ToArray());
        Assert.Equal(96, Word(call, 4, 1));
        Assert.Equal(17, Word(call, 4, 2));
        Assert.Equal(init.Length, Word(call, 4, 3));
        Assert.Equal(init, call.AsSpan(4 + 128, init.Length).ToArray());
        Assert.Equal(0, (call.Length - 4) % 32);

        Assert.Throws<ArgumentException>(() => new SafeProxyDeployment(singleton, owners, 3, new byte[20], 0));
        Assert.Throws<ArgumentException>(() => new SafeProxyDeployment(singleton, [owners[0], owners[0]], 1, new byte[20], 0));
        Assert.Throws<ArgumentException>(() => new SafeProxyDeployment(singleton, [new byte[20]], 1, new byte[20], 0));
    }

    private static long Word(byte[] data, int start, int index) =>
        (long)new BigInteger(data.AsSpan(start + (32 * index), 32), isUnsigned: true, isBigEndian: true);
}
