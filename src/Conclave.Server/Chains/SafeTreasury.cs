using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Chains.Ethereum.Safe;
using Conclave.Crypto.Hashing;
using Conclave.Crypto.Signing;
using Conclave.Policy.Operations;
using Conclave.Server.Api;
using Conclave.Server.Policy;
using Conclave.Storage;
using Conclave.Storage.Ethereum;
using Conclave.Storage.Keys;

namespace Conclave.Server.Chains;

/// <summary>What a caller asks a Safe to do: a plain call (Safe operation 0) and who signs and who executes.</summary>
public sealed record SafeTransactionRequest(byte[] To, BigInteger Value, byte[] Data, BigInteger? Nonce, IReadOnlyList<string> Signers, bool Execute, string? Executor);

/// <summary>One owner's signature over the SafeTx hash: the key, its owner address and the 65-byte r ‖ s ‖ v.</summary>
public sealed record SafeOwnerSignature(string Key, string Owner, byte[] Signature);

/// <summary>The SafeTx, its hash, the owners' signatures (packed as execTransaction takes them) and the execution, if asked.</summary>
public sealed record SafeTransactionResult(SafeRecord Safe, BigInteger Nonce, byte[] SafeTxHash, IReadOnlyList<SafeOwnerSignature> Signatures, byte[] Packed,
    BuiltTransaction? Execution, IReadOnlyList<PolicyExplanation> Policy);

/// <summary>
/// Safe 1.4.1 treasuries (docs/VENUE.md "Safe treasury"). <see cref="RegisterAsync"/> records a Safe after checking on
/// chain that every named key's address is one of its owners and that its threshold is the one given.
/// <see cref="SignAndExecuteAsync"/> computes the SafeTx hash (EIP-712, <see cref="SafeTransaction"/>) at the Safe's
/// current nonce, has each signer key sign it through policy — the request is decided as the call the Safe would make,
/// classified against the venue profiles (a <c>releaseCollateral</c> of the venue is <c>release-collateral</c>) — packs the
/// signatures sorted by owner (<see cref="SafeSignatures.Pack"/>) and, when asked, has the executor key send
/// <c>execTransaction</c> through <see cref="EthereumTransactions"/>. Conclave does not count signatures against the
/// threshold: the Safe contract decides, and a refusal (in gas estimation) sends nothing.
/// </summary>
public sealed class SafeTreasury(KeyService keys, PolicyGate policy, EthereumTransactions transactions)
{
    /// <summary>Most owner keys a registration may name.</summary>
    public const int MaxOwners = 16;

    private static readonly byte[] s_getOwners = Selector("getOwners()");
    private static readonly byte[] s_getThreshold = Selector("getThreshold()");
    private static readonly byte[] s_nonce = Selector("nonce()");

    public async Task<SafeRecord> RegisterAsync(string name, long chainId, byte[] address, IReadOnlyList<string> ownerKeyNames, int threshold, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(ownerKeyNames);
        if (!IsName(name))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "name must be 1-64 characters from [A-Za-z0-9._:@-]");
        }

        if (ownerKeyNames.Count is 0 or > MaxOwners || ownerKeyNames.Distinct(StringComparer.Ordinal).Count() != ownerKeyNames.Count)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"owners must name 1 to {MaxOwners} distinct keys");
        }

        if (threshold < 1 || threshold > ownerKeyNames.Count)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "threshold must be between 1 and the number of owner keys");
        }

        RequireUpstream(chainId);
        var owners = new List<KeyRecord>(ownerKeyNames.Count);
        foreach (string keyName in ownerKeyNames)
        {
            owners.Add(EthereumKey(await keys.GetAsync(keyName, ct).ConfigureAwait(false)));
        }

        // The chain decides who owns the Safe: every key must be an owner, and the threshold must be the Safe's.
        string safe = "0x" + Convert.ToHexStringLower(address);
        IReadOnlyList<string> onChainOwners = await OwnersAsync(chainId, safe, ct).ConfigureAwait(false);
        BigInteger onChainThreshold = Uint(await CallAsync(chainId, safe, s_getThreshold, ct).ConfigureAwait(false), 0);
        foreach (KeyRecord k in owners)
        {
            if (!onChainOwners.Contains(AddressOf(k), StringComparer.Ordinal))
            {
                throw new ApiException(ProblemTypes.SafeMismatch, $"key {k.Name} is not an owner of the Safe on chain {chainId.ToString(CultureInfo.InvariantCulture)}");
            }
        }

        if (onChainThreshold != threshold)
        {
            throw new ApiException(ProblemTypes.SafeMismatch,
                $"the Safe's threshold on chain is {onChainThreshold.ToString(CultureInfo.InvariantCulture)}, not {threshold.ToString(CultureInfo.InvariantCulture)}");
        }

        var record = new SafeRecord(name, chainId, safe, threshold, [.. owners.Select(k => k.Id)], DateTimeOffset.UtcNow);
        try
        {
            await keys.Store.Safes.AddAsync(record, ct).ConfigureAwait(false);
        }
        catch (StorageException e) when (e.Kind == StorageErrorKind.Duplicate)
        {
            throw new ApiException(ProblemTypes.SafeExists, $"a Safe named {name} or at this address on this chain is already registered");
        }

        return record;
    }

    public async Task<SafeRecord> GetAsync(string name, CancellationToken ct) =>
        (IsName(name) ? await keys.Store.Safes.GetAsync(name, ct).ConfigureAwait(false) : null)
            ?? throw new ApiException(ProblemTypes.UnknownSafe, "no Safe registered under this name");

    public Task<IReadOnlyList<SafeRecord>> ListAsync(CancellationToken ct) => keys.Store.Safes.ListAsync(ct);

    /// <summary>The owner keys of a registered Safe (names and addresses), in registration order.</summary>
    public async Task<IReadOnlyList<KeyRecord>> OwnerKeysAsync(SafeRecord safe, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(safe);
        var owners = new List<KeyRecord>(safe.OwnerKeyIds.Count);
        foreach (string id in safe.OwnerKeyIds)
        {
            owners.Add(await keys.Store.Keys.GetAsync(id, ct).ConfigureAwait(false)
                ?? throw new ApiException(ProblemTypes.UnknownKey, $"an owner key of Safe {safe.Name} no longer exists"));
        }

        return owners;
    }

    /// <param name="beforeRelease">Awaited before any signature or transaction leaves the server (the audit intent).</param>
    public async Task<SafeTransactionResult> SignAndExecuteAsync(CallerIdentity caller, SafeRecord safe, SafeTransactionRequest request, string route,
        Func<Task> beforeRelease, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(safe);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(beforeRelease);
        if (request.Signers.Count == 0 || request.Signers.Distinct(StringComparer.Ordinal).Count() != request.Signers.Count)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "signers must name one or more distinct owner keys");
        }

        if (request.Data.Length > EthereumTransactions.MaxDataBytes)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"data is over {EthereumTransactions.MaxDataBytes} bytes");
        }

        IReadOnlyList<KeyRecord> owners = await OwnerKeysAsync(safe, ct).ConfigureAwait(false);
        var signers = new List<KeyRecord>(request.Signers.Count);
        foreach (string name in request.Signers)
        {
            signers.Add(owners.FirstOrDefault(k => k.Name == name)
                ?? throw new ApiException(ProblemTypes.InvalidRequest, $"signer {Short(name)} is not an owner key of Safe {safe.Name}"));
        }

        KeyRecord? executor = null;
        if (request.Execute)
        {
            executor = request.Executor is null ? signers[0] : EthereumKey(await keys.GetAsync(request.Executor, ct).ConfigureAwait(false));
        }
        else if (request.Executor is not null)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "executor goes with execute: true");
        }

        RequireUpstream(safe.ChainId);
        BigInteger nonce = request.Nonce ?? Uint(await CallAsync(safe.ChainId, safe.Address, s_nonce, ct).ConfigureAwait(false), 0);
        byte[] safeAddress = Convert.FromHexString(safe.Address.AsSpan(2));
        var tx = SafeTransaction.Call(request.To, request.Value, request.Data, nonce);
        byte[] hash = tx.Hash(safe.ChainId, safeAddress);
        string described = new JsonObject
        {
            ["safe"] = safe.Address,
            ["chainId"] = safe.ChainId,
            ["to"] = "0x" + Convert.ToHexStringLower(request.To),
            ["value"] = request.Value.ToString(CultureInfo.InvariantCulture),
            ["data"] = "0x" + Convert.ToHexStringLower(request.Data),
            ["nonce"] = nonce.ToString(CultureInfo.InvariantCulture),
            ["safeTxHash"] = "0x" + Convert.ToHexStringLower(hash),
        }.ToJsonString();

        // Each owner signs through policy, decided as the call the Safe makes. A failure gives back every grant made.
        var grants = new List<PolicyGrant>();
        var signatures = new List<SafeOwnerSignature>();
        var raw = new List<(byte[] Signature64, int RecoveryId)>();
        bool done = false;
        try
        {
            foreach (KeyRecord key in signers)
            {
                OperationRequest op = SigningOperations.ForTransaction(caller.Principal, key, transactions.Venues, safe.ChainId, request.To, request.Data, request.Value);
                PolicyGrant grant = await policy.AuthorizeAsync(caller, key, op, route, described, null, ct).ConfigureAwait(false);
                grants.Add(grant);
                SignatureResult sig = await keys.SignDigestEcdsaAsync(key, hash, ct).ConfigureAwait(false);
                int recoveryId = sig.RecoveryId ?? throw new InvalidOperationException("an ECDSA signature came without its recovery id");
                raw.Add((sig.Signature, recoveryId));
                byte[] packedOne = new byte[SafeSignatures.SignatureSizeInBytes];
                sig.Signature.CopyTo(packedOne, 0);
                packedOne[64] = (byte)(27 + recoveryId);
                signatures.Add(new SafeOwnerSignature(key.Name, AddressOf(key), packedOne));
            }

            byte[] packed = SafeSignatures.Pack(hash, raw);
            BuiltTransaction? execution = null;
            if (executor is not null)
            {
                // The executor's transaction is decided as the same call: what execTransaction carries is fixed here.
                OperationRequest executed = SigningOperations.ForTransaction(caller.Principal, executor, transactions.Venues, safe.ChainId, request.To, request.Data, request.Value);
                var draft = new TransactionDraft(safe.ChainId, safeAddress, BigInteger.Zero, tx.ExecTransactionCalldata(packed), null, null, null, null);
                execution = await transactions.BuildSignAndSendAsync(caller, executor, draft, true, route, beforeRelease, ct, executed).ConfigureAwait(false);
            }
            else
            {
                await beforeRelease().ConfigureAwait(false);
            }

            done = true;
            return new SafeTransactionResult(safe, nonce, hash, signatures, packed, execution, [.. grants.Select(g => g.Explanation)]);
        }
        finally
        {
            if (!done)
            {
                foreach (PolicyGrant g in grants)
                {
                    await policy.ReleaseAsync(g).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>A Safe's name: 1-64 characters from [A-Za-z0-9._:@-].</summary>
    public static bool IsName(string? name) =>
        name is { Length: > 0 and <= 64 } && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '@' or '-');

    private static KeyRecord EthereumKey(KeyRecord key) => EthereumTransactions.HasEthereumAddress(key) ? key
        : throw new ApiException(ProblemTypes.Unsupported, $"key {key.Name} ({key.Scheme}) has no Ethereum address and cannot own a Safe");

    private static string AddressOf(KeyRecord key) => "0x" + Convert.ToHexStringLower(EthereumAddress.FromPublicKeyBytes(key.PublicKey));

    private static string Short(string s) => s.Length <= 64 ? s : s[..64];

    private void RequireUpstream(long chainId)
    {
        if (!transactions.Upstreams.Has(chainId))
        {
            throw new ApiException(ProblemTypes.UnknownChain, $"chain {chainId.ToString(CultureInfo.InvariantCulture)} has no upstream in server.json (upstreams)");
        }
    }

    private static byte[] Selector(string signature) => Keccak256.HashData(System.Text.Encoding.ASCII.GetBytes(signature))[..4];

    /// <summary>eth_call of a function without arguments on the Safe; the returned bytes.</summary>
    private async Task<byte[]> CallAsync(long chainId, string to, byte[] selector, CancellationToken ct)
    {
        JsonNode? result;
        try
        {
            result = await transactions.Upstreams.CallAsync(chainId, "eth_call", [new JsonObject { ["to"] = to, ["data"] = "0x" + Convert.ToHexStringLower(selector) }, "latest"], ct)
                .ConfigureAwait(false);
        }
        catch (UpstreamException e)
        {
            throw e.Answered
                ? new ApiException(ProblemTypes.SafeMismatch, "the address does not answer as a Safe: " + e.Message)
                : new ApiException(ProblemTypes.UpstreamUnavailable, e.Message);
        }

        string? hex = result is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        if (hex is null || !hex.StartsWith("0x", StringComparison.Ordinal) || hex.Length % 2 != 0 || !hex.Skip(2).All(char.IsAsciiHexDigit))
        {
            throw new ApiException(ProblemTypes.UpstreamUnavailable, "the upstream answered eth_call with something that is not hex data");
        }

        return Convert.FromHexString(hex.AsSpan(2));
    }

    /// <summary>getOwners(): an ABI-encoded address[] (offset word, length word, one word per owner).</summary>
    private async Task<IReadOnlyList<string>> OwnersAsync(long chainId, string safe, CancellationToken ct)
    {
        byte[] r = await CallAsync(chainId, safe, s_getOwners, ct).ConfigureAwait(false);
        BigInteger offset = Uint(r, 0);
        if (offset != 32 || r.Length < 64)
        {
            throw NotASafe();
        }

        BigInteger count = Uint(r, 1);
        if (count > 1024 || r.Length != 64 + (32 * (int)count))
        {
            throw NotASafe();
        }

        var owners = new List<string>((int)count);
        for (int i = 0; i < (int)count; i++)
        {
            ReadOnlySpan<byte> word = r.AsSpan(64 + (32 * i), 32);
            if (word[..12].ContainsAnyExcept((byte)0))
            {
                throw NotASafe();
            }

            owners.Add("0x" + Convert.ToHexStringLower(word[12..]));
        }

        return owners;
    }

    private static BigInteger Uint(byte[] data, int word) => data.Length >= 32 * (word + 1)
        ? new BigInteger(data.AsSpan(32 * word, 32), isUnsigned: true, isBigEndian: true)
        : throw NotASafe();

    private static ApiException NotASafe() => new(ProblemTypes.SafeMismatch, "the address does not answer getOwners/getThreshold/nonce as a Safe does");
}
