using System.Numerics;
using Conclave.Crypto.Hashing;

namespace Conclave.Chains.Ethereum.Safe;

/// <summary>How a Safe executes its transaction: an ordinary call, or a delegatecall into the target's code.</summary>
public enum SafeOperation : byte
{
    Call = 0,
    DelegateCall = 1,
}

/// <summary>
/// A Safe (Gnosis Safe) multisig transaction as Safe 1.4.1 hashes it for its owners' signatures: EIP-712 with the
/// domain <c>EIP712Domain(uint256 chainId,address verifyingContract)</c> and the struct
/// <c>SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,
/// address gasToken,address refundReceiver,uint256 nonce)</c> (Safe.sol <c>getTransactionHash</c>). Owners sign the
/// 32-byte hash; <see cref="SafeSignatures"/> packs their signatures in the order <c>execTransaction</c> checks them.
/// </summary>
public sealed class SafeTransaction
{
    private static readonly byte[] s_domainTypeHash = Keccak256.HashData("EIP712Domain(uint256 chainId,address verifyingContract)"u8);

    private static readonly byte[] s_safeTxTypeHash = Keccak256.HashData(
        "SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"u8);

    private static readonly BigInteger s_uint256Limit = BigInteger.One << 256;

    private readonly byte[] _to;
    private readonly byte[] _data;
    private readonly byte[] _gasToken;
    private readonly byte[] _refundReceiver;

    /// <summary>Builds a Safe transaction; every address is 20 bytes and every amount a uint256.</summary>
    /// <exception cref="ArgumentException">an address is not 20 bytes, an amount is negative or above 2^256 − 1, or the operation is unknown.</exception>
    public SafeTransaction(
        ReadOnlySpan<byte> to,
        BigInteger value,
        ReadOnlySpan<byte> data,
        SafeOperation operation,
        BigInteger safeTxGas,
        BigInteger baseGas,
        BigInteger gasPrice,
        ReadOnlySpan<byte> gasToken,
        ReadOnlySpan<byte> refundReceiver,
        BigInteger nonce)
    {
        _to = Address(to, nameof(to));
        _gasToken = Address(gasToken, nameof(gasToken));
        _refundReceiver = Address(refundReceiver, nameof(refundReceiver));
        if (operation is not (SafeOperation.Call or SafeOperation.DelegateCall))
        {
            throw new ArgumentException("operation must be Call (0) or DelegateCall (1)", nameof(operation));
        }

        Value = Uint256(value, nameof(value));
        SafeTxGas = Uint256(safeTxGas, nameof(safeTxGas));
        BaseGas = Uint256(baseGas, nameof(baseGas));
        GasPrice = Uint256(gasPrice, nameof(gasPrice));
        Nonce = Uint256(nonce, nameof(nonce));
        Operation = operation;
        _data = data.ToArray();
    }

    /// <summary>A plain call with no refund (gas token, refund receiver zero; no gas fields), as most Safe transactions are.</summary>
    public static SafeTransaction Call(ReadOnlySpan<byte> to, BigInteger value, ReadOnlySpan<byte> data, BigInteger nonce)
        => new(to, value, data, SafeOperation.Call, BigInteger.Zero, BigInteger.Zero, BigInteger.Zero, new byte[20], new byte[20], nonce);

    public ReadOnlySpan<byte> To => _to;

    public BigInteger Value { get; }

    public ReadOnlySpan<byte> Data => _data;

    public SafeOperation Operation { get; }

    public BigInteger SafeTxGas { get; }

    public BigInteger BaseGas { get; }

    public BigInteger GasPrice { get; }

    public ReadOnlySpan<byte> GasToken => _gasToken;

    public ReadOnlySpan<byte> RefundReceiver => _refundReceiver;

    public BigInteger Nonce { get; }

    /// <summary>The EIP-712 domain separator of the Safe at <paramref name="safeAddress"/> on chain <paramref name="chainId"/>.</summary>
    public static byte[] DomainSeparator(BigInteger chainId, ReadOnlySpan<byte> safeAddress)
    {
        byte[] encoded = new byte[96];
        s_domainTypeHash.CopyTo(encoded, 0);
        WriteUint256(encoded.AsSpan(32, 32), Uint256(chainId, nameof(chainId)));
        Address(safeAddress, nameof(safeAddress)).CopyTo(encoded, 64 + 12);
        return Keccak256.HashData(encoded);
    }

    /// <summary><c>hashStruct(SafeTx)</c>: Keccak-256 of the type hash and the ABI-encoded fields, data replaced by its hash.</summary>
    public byte[] StructHash()
    {
        byte[] encoded = new byte[11 * 32];
        Span<byte> e = encoded;
        s_safeTxTypeHash.CopyTo(e[..32]);
        _to.CopyTo(e.Slice(32 + 12, 20));
        WriteUint256(e.Slice(64, 32), Value);
        Keccak256.HashData(_data, e.Slice(96, 32));
        e[128 + 31] = (byte)Operation;
        WriteUint256(e.Slice(160, 32), SafeTxGas);
        WriteUint256(e.Slice(192, 32), BaseGas);
        WriteUint256(e.Slice(224, 32), GasPrice);
        _gasToken.CopyTo(e.Slice(256 + 12, 20));
        _refundReceiver.CopyTo(e.Slice(288 + 12, 20));
        WriteUint256(e.Slice(320, 32), Nonce);
        return Keccak256.HashData(encoded);
    }

    /// <summary>
    /// The hash the owners sign: Keccak-256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(SafeTx)), what
    /// <c>Safe.getTransactionHash</c> returns for this transaction on that Safe.
    /// </summary>
    public byte[] Hash(BigInteger chainId, ReadOnlySpan<byte> safeAddress)
    {
        byte[] buffer = new byte[66];
        buffer[0] = 0x19;
        buffer[1] = 0x01;
        DomainSeparator(chainId, safeAddress).CopyTo(buffer, 2);
        StructHash().CopyTo(buffer, 34);
        return Keccak256.HashData(buffer);
    }

    private static readonly byte[] s_execTransactionSelector = Keccak256.HashData(
        "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"u8)[..4];

    /// <summary>
    /// The calldata of <c>Safe.execTransaction(to, value, data, operation, safeTxGas, baseGas, gasPrice, gasToken,
    /// refundReceiver, signatures)</c> (Safe.sol 1.4.1) for this transaction with the owners' packed signatures
    /// (<see cref="SafeSignatures.Pack"/>): the selector, ten head words, then the two dynamic <c>bytes</c> arguments
    /// (<c>data</c>, <c>signatures</c>) in the tail, each a length word and its bytes zero-padded to whole words
    /// (Solidity ABI specification, "Formal Specification of the Encoding").
    /// </summary>
    public byte[] ExecTransactionCalldata(ReadOnlySpan<byte> signatures)
    {
        const int Head = 10 * 32;
        int dataWords = (_data.Length + 31) / 32;
        int signatureWords = (signatures.Length + 31) / 32;
        byte[] calldata = new byte[4 + Head + 32 + (32 * dataWords) + 32 + (32 * signatureWords)];
        Span<byte> c = calldata;
        s_execTransactionSelector.CopyTo(c);
        Span<byte> args = c[4..];
        _to.CopyTo(args.Slice(12, 20));
        WriteUint256(args.Slice(32, 32), Value);
        WriteUint256(args.Slice(64, 32), Head);
        args[96 + 31] = (byte)Operation;
        WriteUint256(args.Slice(128, 32), SafeTxGas);
        WriteUint256(args.Slice(160, 32), BaseGas);
        WriteUint256(args.Slice(192, 32), GasPrice);
        _gasToken.CopyTo(args.Slice(224 + 12, 20));
        _refundReceiver.CopyTo(args.Slice(256 + 12, 20));
        int signaturesOffset = Head + 32 + (32 * dataWords);
        WriteUint256(args.Slice(288, 32), signaturesOffset);
        WriteUint256(args.Slice(Head, 32), _data.Length);
        _data.CopyTo(args[(Head + 32)..]);
        WriteUint256(args.Slice(signaturesOffset, 32), signatures.Length);
        signatures.CopyTo(args[(signaturesOffset + 32)..]);
        return calldata;
    }

    private static byte[] Address(ReadOnlySpan<byte> address, string parameter)
        => address.Length == 20 ? address.ToArray() : throw new ArgumentException($"{parameter} must be a 20-byte address", parameter);

    private static BigInteger Uint256(BigInteger v, string parameter)
        => v.Sign >= 0 && v < s_uint256Limit ? v : throw new ArgumentException($"{parameter} must be between 0 and 2^256 - 1", parameter);

    /// <summary>A non-negative integer as a big-endian 32-byte word.</summary>
    internal static void WriteUint256(Span<byte> destination32, BigInteger v)
    {
        destination32.Clear();
        int length = v.GetByteCount(isUnsigned: true);
        v.TryWriteBytes(destination32[(32 - length)..], out _, isUnsigned: true, isBigEndian: true);
    }
}
