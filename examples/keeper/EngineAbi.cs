using System.Numerics;
using System.Text;
using Conclave.Crypto.Hashing;

namespace Conclave.Keeper;

/// <summary>
/// The few MarginEngine reads the keeper makes (examples/venue/contracts/MarginEngine.sol), ABI-encoded by hand: a
/// selector (the first 4 bytes of Keccak-256 of the canonical signature) and static 32-byte words.
/// </summary>
internal static class EngineAbi
{
    public static readonly string PositionOpenedTopic = "0x" + Convert.ToHexStringLower(Keccak256.HashData(Encoding.ASCII.GetBytes("PositionOpened(address,int256,uint256)")));

    public static string Price() => Call("price()");

    public static string PriceUpdatedAt() => Call("priceUpdatedAt()");

    public static string SeriesCount() => Call("seriesCount()");

    public static string Series(long seriesId) => Call("series(uint256)", Word(new BigInteger(seriesId)));

    public static string IsLiquidatable(string account) => Call("isLiquidatable(address)", Word(account));

    /// <summary>The account an indexed-address topic names, lowercase 0x text.</summary>
    public static string TopicAddress(string topic) => "0x" + topic[^40..].ToLowerInvariant();

    public static BigInteger Uint(byte[] data, int index = 0) =>
        data.Length >= 32 * (index + 1) ? new BigInteger(data.AsSpan(32 * index, 32), isUnsigned: true, isBigEndian: true) : throw new ChainRpcException("eth_call returned too few bytes");

    public static bool Bool(byte[] data, int index = 0) => Uint(data, index) == BigInteger.One;

    private static string Call(string signature, string words = "") =>
        "0x" + Convert.ToHexStringLower(Keccak256.HashData(Encoding.ASCII.GetBytes(signature)).AsSpan(0, 4)) + words;

    private static string Word(string address) => new string('0', 24) + address[2..].ToLowerInvariant();

    private static string Word(BigInteger value) => Convert.ToHexStringLower(value.ToByteArray(isUnsigned: true, isBigEndian: true)).PadLeft(64, '0');
}
