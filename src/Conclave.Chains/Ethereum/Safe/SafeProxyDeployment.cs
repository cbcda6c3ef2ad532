using System.Numerics;
using Conclave.Crypto.Hashing;

namespace Conclave.Chains.Ethereum.Safe;

/// <summary>
/// A new Safe 1.4.1 created through <c>SafeProxyFactory.createProxyWithNonce(singleton, initializer, saltNonce)</c>
/// (SafeProxyFactory.sol 1.4.1): the initializer is <c>Safe.setup(owners, threshold, to = 0, data = "",
/// fallbackHandler, paymentToken = 0, payment = 0, paymentReceiver = 0)</c>, and the factory deploys the proxy with
/// CREATE2 (EIP-1014) under the salt <c>keccak256(keccak256(initializer) ‖ uint256(saltNonce))</c> and the init code
/// <c>proxyCreationCode() ‖ uint256(singleton)</c>, so its address is known before the transaction is sent. Calldata
/// follows the Solidity ABI specification ("Formal Specification of the Encoding": head words, dynamic arguments in the
/// tail as a length word and zero-padded words).
/// </summary>
public sealed class SafeProxyDeployment
{
    private static readonly byte[] s_setupSelector = Keccak256.HashData("setup(address[],uint256,address,bytes,address,address,uint256,address)"u8)[..4];
    private static readonly byte[] s_createSelector = Keccak256.HashData("createProxyWithNonce(address,bytes,uint256)"u8)[..4];

    /// <summary>Topic 0 of <c>ProxyCreation(address indexed proxy, address singleton)</c>, which the factory emits.</summary>
    public static byte[] ProxyCreationTopic { get; } = Keccak256.HashData("ProxyCreation(address,address)"u8);

    /// <summary>The selector of <c>proxyCreationCode()</c>, the factory's view of the proxy's creation code.</summary>
    public static byte[] ProxyCreationCodeSelector { get; } = Keccak256.HashData("proxyCreationCode()"u8)[..4];

    private readonly byte[] _singleton;
    private readonly byte[] _initializer;

    /// <param name="singleton">the Safe singleton (mastercopy) the proxy delegates to, 20 bytes.</param>
    /// <param name="owners">the owners' 20-byte addresses, in the order <c>setup</c> stores them; distinct and non-zero.</param>
    /// <param name="threshold">1 to the number of owners.</param>
    /// <param name="fallbackHandler">20 bytes; zero for none.</param>
    /// <param name="saltNonce">a uint256 chosen by the deployer.</param>
    /// <exception cref="ArgumentException">an address is not 20 bytes, owners repeat or are zero, the threshold is out of range, or the salt nonce is not a uint256.</exception>
    public SafeProxyDeployment(ReadOnlySpan<byte> singleton, IReadOnlyList<byte[]> owners, int threshold, ReadOnlySpan<byte> fallbackHandler, BigInteger saltNonce)
    {
        ArgumentNullException.ThrowIfNull(owners);
        if (singleton.Length != 20 || fallbackHandler.Length != 20)
        {
            throw new ArgumentException("the singleton and the fallback handler must be 20-byte addresses");
        }

        if (owners.Count == 0 || owners.Any(o => o is null || o.Length != 20 || !o.AsSpan().ContainsAnyExcept((byte)0))
            || owners.Select(Convert.ToHexString).Distinct(StringComparer.Ordinal).Count() != owners.Count)
        {
            throw new ArgumentException("owners must be distinct non-zero 20-byte addresses", nameof(owners));
        }

        if (threshold < 1 || threshold > owners.Count)
        {
            throw new ArgumentException("threshold must be between 1 and the number of owners", nameof(threshold));
        }

        if (saltNonce.Sign < 0 || saltNonce.GetBitLength() > 256)
        {
            throw new ArgumentException("the salt nonce must be a uint256", nameof(saltNonce));
        }

        _singleton = singleton.ToArray();
        SaltNonce = saltNonce;

        // setup(address[] _owners, uint256 _threshold, address to, bytes data, address fallbackHandler,
        //       address paymentToken, uint256 payment, address paymentReceiver): eight head words, then the owners
        //       array (length word, one word per owner) and the empty data (a zero length word).
        const int Head = 8 * 32;
        int ownersTail = 32 * (1 + owners.Count);
        _initializer = new byte[4 + Head + ownersTail + 32];
        Span<byte> c = _initializer;
        s_setupSelector.CopyTo(c);
        Span<byte> args = c[4..];
        SafeTransaction.WriteUint256(args[..32], Head);
        SafeTransaction.WriteUint256(args.Slice(32, 32), threshold);
        SafeTransaction.WriteUint256(args.Slice(96, 32), Head + ownersTail);
        fallbackHandler.CopyTo(args.Slice(128 + 12, 20));
        SafeTransaction.WriteUint256(args.Slice(Head, 32), owners.Count);
        for (int i = 0; i < owners.Count; i++)
        {
            owners[i].CopyTo(args.Slice(Head + 32 + (32 * i) + 12, 20));
        }
    }

    public BigInteger SaltNonce { get; }

    /// <summary>The <c>setup(...)</c> calldata the proxy is initialised with.</summary>
    public ReadOnlySpan<byte> Initializer => _initializer;

    /// <summary>The CREATE2 salt the factory uses: <c>keccak256(keccak256(initializer) ‖ uint256(saltNonce))</c>.</summary>
    public byte[] Salt()
    {
        byte[] buffer = new byte[64];
        Keccak256.HashData(_initializer, buffer.AsSpan(0, 32));
        SafeTransaction.WriteUint256(buffer.AsSpan(32, 32), SaltNonce);
        return Keccak256.HashData(buffer);
    }

    /// <summary>The calldata of <c>createProxyWithNonce(singleton, initializer, saltNonce)</c> for the factory.</summary>
    public byte[] CreateProxyWithNonceCalldata()
    {
        const int Head = 3 * 32;
        int initializerWords = (_initializer.Length + 31) / 32;
        byte[] calldata = new byte[4 + Head + 32 + (32 * initializerWords)];
        Span<byte> c = calldata;
        s_createSelector.CopyTo(c);
        Span<byte> args = c[4..];
        _singleton.CopyTo(args.Slice(12, 20));
        SafeTransaction.WriteUint256(args.Slice(32, 32), Head);
        SafeTransaction.WriteUint256(args.Slice(64, 32), SaltNonce);
        SafeTransaction.WriteUint256(args.Slice(Head, 32), _initializer.Length);
        _initializer.CopyTo(args[(Head + 32)..]);
        return calldata;
    }

    /// <summary>
    /// The proxy's address: CREATE2 by <paramref name="factory"/> with <see cref="Salt"/> and the init code
    /// <c>proxyCreationCode ‖ uint256(singleton)</c> (the factory's <c>proxyCreationCode()</c>).
    /// </summary>
    public byte[] PredictAddress(ReadOnlySpan<byte> factory, ReadOnlySpan<byte> proxyCreationCode)
    {
        byte[] initCode = new byte[proxyCreationCode.Length + 32];
        proxyCreationCode.CopyTo(initCode);
        _singleton.CopyTo(initCode, proxyCreationCode.Length + 12);
        return Create2Address(factory, Salt(), Keccak256.HashData(initCode));
    }

    /// <summary>EIP-1014: <c>keccak256(0xff ‖ deployer ‖ salt ‖ keccak256(init_code))[12:]</c>.</summary>
    public static byte[] Create2Address(ReadOnlySpan<byte> deployer, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> initCodeHash)
    {
        if (deployer.Length != 20 || salt.Length != 32 || initCodeHash.Length != 32)
        {
            throw new ArgumentException("CREATE2 takes a 20-byte deployer, a 32-byte salt and a 32-byte init code hash");
        }

        byte[] buffer = new byte[1 + 20 + 32 + 32];
        buffer[0] = 0xff;
        deployer.CopyTo(buffer.AsSpan(1));
        salt.CopyTo(buffer.AsSpan(21));
        initCodeHash.CopyTo(buffer.AsSpan(53));
        return Keccak256.HashData(buffer)[12..];
    }
}
