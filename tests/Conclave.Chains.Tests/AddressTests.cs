using Conclave.Chains.Ethereum;
using Conclave.Chains.Solana;
using Conclave.Crypto;

namespace Conclave.Chains.Tests;

/// <summary>Address formats (moved here from Conclave.Wallets when the two copies were merged into Conclave.Chains).</summary>
public sealed class AddressTests
{
    /// <summary>EIP-55's own examples (all-caps, all-lower and mixed).</summary>
    [Theory]
    [InlineData("0x52908400098527886E0F7030069857D2E4169EE7")]
    [InlineData("0x8617E340B3D01FA5F11F306F4090FD50E238070D")]
    [InlineData("0xde709f2102306220921060314715629080e2fb77")]
    [InlineData("0x27b1fdb04752bbc536007a920d24acb045561c26")]
    [InlineData("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")]
    [InlineData("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")]
    [InlineData("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB")]
    [InlineData("0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb")]
    public void Eip55Checksums(string address)
    {
        Assert.Equal(address, EthereumAddress.ToChecksum(Convert.FromHexString(address[2..])));
    }

    [Fact]
    public void EthereumAddressOfAKnownKey()
    {
        // Private key 1: its address is well known.
        byte[] g = Conclave.Crypto.Secp256k1.Secp256k1Point.Generator.ToCompressed();
        Assert.Equal("0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf", EthereumAddress.FromPublicKey(g));
        Assert.Throws<CryptoFormatException>(() => EthereumAddress.FromPublicKeyBytes(new byte[33]));
    }

    [Fact]
    public void SolanaAddressIsBase58OfTheKey()
    {
        // The system program's id is 32 zero bytes.
        Assert.Equal("11111111111111111111111111111111", SolanaAddress.FromPublicKey(new byte[32]));
        Assert.Throws<CryptoFormatException>(() => SolanaAddress.FromPublicKey(new byte[33]));
    }
}
