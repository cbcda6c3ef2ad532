using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Crypto.Signing;
using Conclave.Policy.Venues;
using Conclave.Server.Api;
using Conclave.Server.Policy;
using Conclave.Storage.Keys;

namespace Conclave.Server.Chains;

/// <summary>
/// What a caller asks Conclave to build: the fields it gives; null ones are filled from the chain's upstream
/// (<see cref="EthereumTransactions"/>). <paramref name="To"/> is 20 bytes.
/// </summary>
public sealed record TransactionDraft(long ChainId, byte[] To, BigInteger Value, byte[] Data, BigInteger? Gas, BigInteger? MaxFeePerGas,
    BigInteger? MaxPriorityFeePerGas, BigInteger? Nonce);

/// <summary>A signed EIP-1559 transaction (and whether it was handed to the upstream).</summary>
public sealed record BuiltTransaction(byte[] Raw, string Hash, string From, BigInteger Nonce, long ChainId, BigInteger Gas, BigInteger MaxFeePerGas,
    BigInteger MaxPriorityFeePerGas, bool Sent, PolicyExplanation Policy);

/// <summary>
/// Builds, signs and sends EIP-1559 (type 2, EIP-1559 §"Specification") transactions for a key with an Ethereum address
/// (ecdsa-secp256k1, hsm-ecdsa-secp256k1, ecdsa-dkls23): chain id from the request, the nonce from the durable nonce manager
/// (<see cref="Conclave.Storage.Ethereum.IEthereumNonceStore"/>, resynchronised with the upstream's pending count), gas from
/// <c>eth_estimateGas</c> plus 20 %, the priority fee from <c>eth_maxPriorityFeePerGas</c> and the fee cap as twice the latest
/// base fee plus the priority fee. Policy decides before any nonce is reserved or anything is sent, exactly as for
/// eth_signTransaction (the calldata is classified against the venue profiles); a refused request never reaches the chain.
/// A nonce whose transaction is not signed, or which the upstream refuses, is given back, so the next request reuses it.
/// </summary>
public sealed class EthereumTransactions(KeyService keys, PolicyGate policy, VenueProfileSource venues, ChainUpstreams upstreams)
{
    private readonly SendOrder _order = new();

    /// <summary>Largest calldata accepted (bytes).</summary>
    public const int MaxDataBytes = 128 * 1024;

    /// <summary>The venue profiles in force (read from the store within the refresh interval).</summary>
    public Task<VenueRegistry> VenuesAsync(CancellationToken ct) => venues.CurrentAsync(ct);

    public ChainUpstreams Upstreams => upstreams;

    public static bool HasEthereumAddress(KeyRecord key) => key.Scheme is "ecdsa-secp256k1" or "hsm-ecdsa-secp256k1" or Conclave.Threshold.Dkls23.DklsScheme.Name;

    /// <param name="beforeRelease">Awaited before the signed transaction leaves the server (sent or returned): the request's
    /// audit intent must be durable first (docs/API.md "Authentication and audit").</param>
    /// <param name="operation">What policy decides on, when the caller classified the transaction itself (a Safe's
    /// <c>execTransaction</c> is decided as the call it executes, <see cref="SafeTreasury"/>); null: the transaction's own
    /// calldata classified against the venue profiles.</param>
    /// <param name="decided">Policy already decided by the caller (<see cref="SafeTreasury"/> decides a Safe's execution with
    /// its owner signatures, before anything is signed): the grant (released here if the transaction is not sent; null when
    /// a held request's approval reserved its counters) and the explanation to answer; null: decided here.</param>
    public async Task<BuiltTransaction> BuildSignAndSendAsync(CallerIdentity caller, KeyRecord key, TransactionDraft draft, bool send, string route,
        Func<Task> beforeRelease, CancellationToken ct, Conclave.Policy.Operations.OperationRequest? operation = null,
        (PolicyGrant? Grant, PolicyExplanation Explanation)? decided = null)
    {
        ArgumentNullException.ThrowIfNull(beforeRelease);
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(draft);
        if (!HasEthereumAddress(key))
        {
            throw new ApiException(ProblemTypes.Unsupported, $"key {key.Name} ({key.Scheme}) has no Ethereum address");
        }

        if (draft.ChainId <= 0)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "chainId must be a positive EIP-155 chain id (0 would be valid on every chain)");
        }

        if (!upstreams.Has(draft.ChainId))
        {
            throw new ApiException(ProblemTypes.UnknownChain, $"chain {draft.ChainId.ToString(CultureInfo.InvariantCulture)} has no upstream in server.json (upstreams)");
        }

        if (draft.To.Length != 20)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "to must be a 20-byte address");
        }

        if (draft.Data.Length > MaxDataBytes)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"data is over {MaxDataBytes} bytes");
        }

        long chainId = draft.ChainId;
        string from = EthereumAddress.FromPublicKey(key.PublicKey);
        string to = "0x" + Convert.ToHexStringLower(draft.To);

        // Policy first: a refused request reserves no nonce and sends nothing.
        PolicyGrant? grant;
        PolicyExplanation explanation;
        if (decided is { } before)
        {
            (grant, explanation) = before;
        }
        else
        {
            Conclave.Policy.Operations.OperationRequest op = operation
                ?? SigningOperations.ForTransaction(caller.Principal, key, await venues.CurrentAsync(ct).ConfigureAwait(false), chainId, draft.To, draft.Data, draft.Value);
            string described = new JsonObject
            {
                ["chainId"] = chainId,
                ["to"] = to,
                ["value"] = draft.Value.ToString(CultureInfo.InvariantCulture),
                ["data"] = "0x" + Convert.ToHexStringLower(draft.Data),
                ["send"] = send,
            }.ToJsonString();
            grant = await policy.AuthorizeAsync(caller, key, op, route, described, null, ct).ConfigureAwait(false);
            explanation = grant.Explanation;
        }

        long? managedNonce = null;
        bool sent = false;
        try
        {
            BigInteger gas = draft.Gas ?? await EstimateGasAsync(chainId, from, to, draft, ct).ConfigureAwait(false);
            BigInteger priority = draft.MaxPriorityFeePerGas ?? await QuantityAsync(chainId, "eth_maxPriorityFeePerGas", [], ct).ConfigureAwait(false);
            BigInteger maxFee = draft.MaxFeePerGas ?? (2 * await BaseFeeAsync(chainId, ct).ConfigureAwait(false)) + priority;
            if (priority > maxFee)
            {
                priority = maxFee;
            }

            BigInteger nonce;
            if (draft.Nonce is { } given)
            {
                nonce = given;
            }
            else
            {
                long pending = (long)await QuantityAsync(chainId, "eth_getTransactionCount", [from, "pending"], ct).ConfigureAwait(false);
                _order.Observe(chainId, from, pending);
                managedNonce = await keys.Store.EthereumNonces.ReserveAsync(chainId, from, pending, ct).ConfigureAwait(false);
                nonce = managedNonce.Value;
            }

            var tx = new EthereumTransaction
            {
                Type = 2,
                ChainId = chainId,
                Nonce = nonce,
                MaxPriorityFeePerGas = priority,
                MaxFeePerGas = maxFee,
                GasLimit = gas,
                To = draft.To,
                Value = draft.Value,
                Data = draft.Data,
            };
            SignatureResult sig = await keys.SignDigestEcdsaAsync(key, tx.SigningHash(), ct).ConfigureAwait(false);
            byte[] raw = tx.Serialize(sig.Signature, sig.RecoveryId!.Value);
            SignedEthereumTransaction check = SignedEthereumTransaction.Decode(raw);
            if (check.SenderAddress != from)
            {
                throw new InvalidOperationException("the signed transaction does not recover to the signing key");
            }

            string hash = "0x" + Convert.ToHexStringLower(check.Hash);
            await beforeRelease().ConfigureAwait(false);
            if (send)
            {
                if (managedNonce is { } ordered)
                {
                    await _order.WaitTurnAsync(chainId, from, ordered, ct).ConfigureAwait(false); // nonce order per account
                }

                await SendAsync(chainId, raw, hash, ct).ConfigureAwait(false);
            }

            sent = true;
            if (managedNonce is { } done)
            {
                _order.Sent(chainId, from, done);
            }

            return new BuiltTransaction(raw, hash, from, nonce, chainId, gas, maxFee, priority, send, explanation);
        }
        finally
        {
            if (!sent)
            {
                if (managedNonce is { } n)
                {
                    await keys.Store.EthereumNonces.ReleaseAsync(chainId, from, n, CancellationToken.None).ConfigureAwait(false);
                }

                await policy.ReleaseAsync(grant).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Fee bump: replaces a pending transaction of this key by the same transaction — same nonce, recipient, value, data
    /// and gas limit — with higher fees, each at least 12.5 % (plus 1 wei) above the pending one's (pools such as geth's
    /// refuse a replacement under +10 %) and no lower than what a new transaction would get now (the priority fee from
    /// <c>eth_maxPriorityFeePerGas</c>, the fee cap twice the latest base fee plus it). Policy decides as for the original
    /// (the calldata classified again); the replacement is signed and sent like any transaction, its nonce given, so the
    /// nonce manager is not involved. A transaction the node does not know, or that another account sent, is 400; one
    /// already mined, or whose nonce is already used on chain, is 409 <c>transaction-not-pending</c>.
    /// </summary>
    public async Task<BuiltTransaction> ReplaceAsync(CallerIdentity caller, KeyRecord key, long chainId, string hash, string route, Func<Task> beforeRelease,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(hash);
        if (!HasEthereumAddress(key))
        {
            throw new ApiException(ProblemTypes.Unsupported, $"key {key.Name} ({key.Scheme}) has no Ethereum address");
        }

        if (!upstreams.Has(chainId))
        {
            throw new ApiException(ProblemTypes.UnknownChain, $"chain {chainId.ToString(CultureInfo.InvariantCulture)} has no upstream in server.json (upstreams)");
        }

        if (hash.Length != 66 || !hash.StartsWith("0x", StringComparison.Ordinal) || !hash.Skip(2).All(char.IsAsciiHexDigit))
        {
            throw new ApiException(ProblemTypes.BadHex, "hash must be 0x and 64 hex digits");
        }

        if (await CallAsync(chainId, "eth_getTransactionByHash", [hash], ct).ConfigureAwait(false) is not JsonObject pending)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "the chain's node does not know this transaction");
        }

        string from = EthereumAddress.FromPublicKey(key.PublicKey);
        if (pending["from"] is not JsonValue f || !f.TryGetValue(out string? sender) || !string.Equals(sender, from, StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"the transaction was not sent by key {key.Name}");
        }

        if (pending["blockNumber"] is JsonValue)
        {
            throw new ApiException(ProblemTypes.TransactionNotPending, "the transaction is already mined");
        }

        BigInteger nonce = Field(pending, "nonce");
        BigInteger mined = await QuantityAsync(chainId, "eth_getTransactionCount", [from, "latest"], ct).ConfigureAwait(false);
        if (mined > nonce)
        {
            throw new ApiException(ProblemTypes.TransactionNotPending, "another transaction with this nonce is already mined");
        }

        if (pending["to"] is not JsonValue toValue || !toValue.TryGetValue(out string? toText) || !EthereumAddress.TryParse(toText?.ToLowerInvariant(), out byte[] to))
        {
            throw new ApiException(ProblemTypes.Unsupported, "only transactions to an address are replaced (contract creation is not offered)");
        }

        string input = pending["input"] is JsonValue i && i.TryGetValue(out string? inputText) ? inputText : "0x";
        if (!input.StartsWith("0x", StringComparison.Ordinal) || input.Length % 2 != 0 || !input.Skip(2).All(char.IsAsciiHexDigit))
        {
            throw new ApiException(ProblemTypes.UpstreamUnavailable, "the upstream answered a transaction whose input is not hex");
        }

        // A legacy transaction's gas price is both its fee cap and its tip.
        BigInteger oldMaxFee = pending["maxFeePerGas"] is not null ? Field(pending, "maxFeePerGas") : Field(pending, "gasPrice");
        BigInteger oldPriority = pending["maxPriorityFeePerGas"] is not null ? Field(pending, "maxPriorityFeePerGas") : oldMaxFee;
        BigInteger priority = BigInteger.Max(Bump(oldPriority), await QuantityAsync(chainId, "eth_maxPriorityFeePerGas", [], ct).ConfigureAwait(false));
        BigInteger maxFee = BigInteger.Max(Bump(oldMaxFee), (2 * await BaseFeeAsync(chainId, ct).ConfigureAwait(false)) + priority);
        var draft = new TransactionDraft(chainId, to, Field(pending, "value"), Convert.FromHexString(input.AsSpan(2)), Field(pending, "gas"), maxFee, priority, nonce);
        return await BuildSignAndSendAsync(caller, key, draft, true, route, beforeRelease, ct).ConfigureAwait(false);
    }

    private static BigInteger Bump(BigInteger fee) => fee + (fee / 8) + 1;

    private static BigInteger Field(JsonObject tx, string name)
    {
        try
        {
            return ChainUpstreams.ParseQuantity(tx[name], name);
        }
        catch (UpstreamException e)
        {
            throw Map(e);
        }
    }

    /// <summary>
    /// eth_sendRawTransaction. A refusal by the node is 422 (and the nonce goes back); no answer is checked with
    /// eth_getTransactionByHash: if the node has the transaction it counts as sent, otherwise the nonce goes back.
    /// </summary>
    private async Task SendAsync(long chainId, byte[] raw, string hash, CancellationToken ct)
    {
        try
        {
            await upstreams.CallAsync(chainId, "eth_sendRawTransaction", ["0x" + Convert.ToHexStringLower(raw)], ct).ConfigureAwait(false);
        }
        catch (UpstreamException e) when (!e.Answered)
        {
            JsonNode? known;
            try
            {
                known = await upstreams.CallAsync(chainId, "eth_getTransactionByHash", [hash], ct).ConfigureAwait(false);
            }
            catch (UpstreamException)
            {
                throw Map(e);
            }

            if (known is null)
            {
                throw Map(e);
            }
        }
        catch (UpstreamException e)
        {
            throw Map(e);
        }
    }

    private async Task<BigInteger> EstimateGasAsync(long chainId, string from, string to, TransactionDraft d, CancellationToken ct)
    {
        var call = new JsonObject { ["from"] = from, ["to"] = to, ["value"] = ChainUpstreams.Quantity(d.Value), ["data"] = "0x" + Convert.ToHexStringLower(d.Data) };
        BigInteger estimate = await QuantityAsync(chainId, "eth_estimateGas", [call], ct).ConfigureAwait(false);
        return estimate + (estimate / 5);
    }

    private async Task<BigInteger> BaseFeeAsync(long chainId, CancellationToken ct)
    {
        JsonNode? block = await CallAsync(chainId, "eth_getBlockByNumber", ["latest", false], ct).ConfigureAwait(false);
        return block is JsonObject o && o["baseFeePerGas"] is { } b ? ChainUpstreams.ParseQuantity(b, "baseFeePerGas")
            : throw new ApiException(ProblemTypes.UpstreamUnavailable, $"the upstream for chain {chainId.ToString(CultureInfo.InvariantCulture)} reports no EIP-1559 base fee");
    }

    private async Task<BigInteger> QuantityAsync(long chainId, string method, JsonArray parameters, CancellationToken ct)
    {
        JsonNode? result = await CallAsync(chainId, method, parameters, ct).ConfigureAwait(false);
        try
        {
            return ChainUpstreams.ParseQuantity(result, method);
        }
        catch (UpstreamException e)
        {
            throw Map(e);
        }
    }

    /// <summary>A JSON-RPC call to the chain's upstream; a refusal is 422 <c>chain-refused</c>, no answer 502.</summary>
    internal async Task<JsonNode?> CallAsync(long chainId, string method, JsonArray parameters, CancellationToken ct)
    {
        try
        {
            return await upstreams.CallAsync(chainId, method, parameters, ct).ConfigureAwait(false);
        }
        catch (UpstreamException e)
        {
            throw Map(e);
        }
    }

    private static ApiException Map(UpstreamException e) => e.Answered
        ? new ApiException(ProblemTypes.ChainRefused, "the chain's node refused: " + e.Message)
        : new ApiException(ProblemTypes.UpstreamUnavailable, e.Message);
}
