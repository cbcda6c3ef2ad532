using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using Conclave.Chains.Ethereum;
using Conclave.Chains.Ethereum.Safe;
using Conclave.Crypto.Hashing;
using Conclave.Crypto.Signing;
using Conclave.Policy.Operations;
using Conclave.Policy.Venues;
using Conclave.Server.Api;
using Conclave.Server.Policy;
using Conclave.Storage;
using Conclave.Storage.Ethereum;
using Conclave.Storage.Keys;

namespace Conclave.Server.Chains;

/// <summary>What a caller asks a Safe to do: a plain call (Safe operation 0) and who signs and who executes.</summary>
public sealed record SafeTransactionRequest(byte[] To, BigInteger Value, byte[] Data, BigInteger? Nonce, IReadOnlyList<string> Signers, bool Execute, string? Executor);

/// <summary>
/// A held Safe transaction approved by its quorum (docs/VENUE.md "Held owner signatures"): the SafeTx hash it was
/// approved for (the request must still hash to it), the decisions the approval stands for (<c>signer:KEYID</c>,
/// <c>executor:KEYID</c>), which are not decided again, and the held request's policy.
/// </summary>
public sealed record SafeApproval(string SafeTxHash, IReadOnlySet<string> Decisions, PolicyExplanation Policy);

/// <summary>How <c>POST /v1/safes</c> deploys a Safe: the deployer key, the CREATE2 salt nonce (null: derived from the
/// name) and, overriding server.json <c>safeContracts</c>, the singleton and the proxy factory.</summary>
public sealed record SafeDeployRequest(string Deployer, BigInteger? SaltNonce, byte[]? Singleton, byte[]? ProxyFactory);

/// <summary>A deployed and registered Safe, with the deployment transaction.</summary>
public sealed record DeployedSafe(SafeRecord Safe, BuiltTransaction Transaction, BigInteger SaltNonce, string Singleton, string ProxyFactory, long Block);

/// <summary>One owner's signature over the SafeTx hash: the key, its owner address and the 65-byte r ‖ s ‖ v.</summary>
public sealed record SafeOwnerSignature(string Key, string Owner, byte[] Signature);

/// <summary>The SafeTx, its hash, the owners' signatures (packed as execTransaction takes them) and the execution, if asked.</summary>
public sealed record SafeTransactionResult(SafeRecord Safe, BigInteger Nonce, byte[] SafeTxHash, IReadOnlyList<SafeOwnerSignature> Signatures, byte[] Packed,
    BuiltTransaction? Execution, IReadOnlyList<PolicyExplanation> Policy);

/// <summary>
/// Safe 1.4.1 treasuries (docs/VENUE.md "Safe treasury"). <see cref="RegisterAsync"/> records a Safe after checking on
/// chain that every named key's address is one of its owners and that its threshold is the one given;
/// <see cref="DeployAsync"/> first creates one through the Safe proxy factory (<see cref="SafeProxyDeployment"/>), sent by
/// a deployer key like any transaction, then registers it the same way. <see cref="SignAndExecuteAsync"/> computes the
/// SafeTx hash (EIP-712, <see cref="SafeTransaction"/>) at the Safe's current nonce, decides policy for each owner
/// signature and the execution — each as the call the Safe would make, classified against the venue profiles (a
/// <c>releaseCollateral</c> of the venue is <c>release-collateral</c>) — before anything is signed, holds the whole
/// request for approval when a decision asks for it, else has each signer key sign, packs the signatures sorted by owner
/// (<see cref="SafeSignatures.Pack"/>) and, when asked, has the executor key send <c>execTransaction</c> through
/// <see cref="EthereumTransactions"/>. Conclave does not count signatures against the threshold: the Safe contract
/// decides, and a refusal (in gas estimation) sends nothing.
/// </summary>
public sealed class SafeTreasury(KeyService keys, PolicyGate policy, EthereumTransactions transactions, ApprovalService approvals,
    IReadOnlyDictionary<long, (byte[] Singleton, byte[] ProxyFactory, byte[] FallbackHandler)> contracts)
{
    /// <summary>Most owner keys a registration may name.</summary>
    public const int MaxOwners = 16;

    /// <summary>How long a deployment waits for its transaction to be mined before answering 504.</summary>
    public static TimeSpan DeploymentWait { get; } = TimeSpan.FromSeconds(60);

    private const string SignerStep = "signer";
    private const string ExecutorStep = "executor";

    private static readonly byte[] s_getOwners = Selector("getOwners()");
    private static readonly byte[] s_getThreshold = Selector("getThreshold()");
    private static readonly byte[] s_nonce = Selector("nonce()");

    public async Task<SafeRecord> RegisterAsync(string name, long chainId, byte[] address, IReadOnlyList<string> ownerKeyNames, int threshold, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(address);
        IReadOnlyList<KeyRecord> owners = await CheckRegistrationAsync(name, chainId, ownerKeyNames, threshold, ct).ConfigureAwait(false);
        return await VerifyAndStoreAsync(name, chainId, "0x" + Convert.ToHexStringLower(address), owners, threshold, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Deploys a Safe 1.4.1 owned by the named keys (in that order) with this threshold: <c>createProxyWithNonce(singleton,
    /// setup(...), saltNonce)</c> on the proxy factory, sent by the deployer key through the transaction path (policy,
    /// nonce manager, fees), then — once mined, and only if the receipt's <c>ProxyCreation</c> event names the address
    /// predicted by CREATE2 — registered as <see cref="RegisterAsync"/> does (owners and threshold read back from chain).
    /// Nothing is registered unless all of that holds. The salt nonce defaults to a hash of the name, so a retry of the
    /// same request finds the Safe already there (409) instead of deploying a second one.
    /// </summary>
    public async Task<DeployedSafe> DeployAsync(CallerIdentity caller, string name, long chainId, IReadOnlyList<string> ownerKeyNames, int threshold, SafeDeployRequest deploy,
        string route, Func<Task> beforeRelease, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(deploy);
        IReadOnlyList<KeyRecord> owners = await CheckRegistrationAsync(name, chainId, ownerKeyNames, threshold, ct).ConfigureAwait(false);
        KeyRecord deployer = EthereumKey(await keys.GetAsync(deploy.Deployer, ct).ConfigureAwait(false));
        bool configured = contracts.TryGetValue(chainId, out var chainContracts);
        string chain = chainId.ToString(CultureInfo.InvariantCulture);
        byte[] singleton = deploy.Singleton ?? (configured ? chainContracts.Singleton : null)
            ?? throw new ApiException(ProblemTypes.SafeContractsUnknown, $"chain {chain} has no Safe contracts in server.json (safeContracts) and the request names no singleton");
        byte[] factory = deploy.ProxyFactory ?? (configured ? chainContracts.ProxyFactory : null)
            ?? throw new ApiException(ProblemTypes.SafeContractsUnknown, $"chain {chain} has no Safe contracts in server.json (safeContracts) and the request names no proxyFactory");
        byte[] fallbackHandler = configured ? chainContracts.FallbackHandler : new byte[20];
        if (await keys.Store.Safes.GetAsync(name, ct).ConfigureAwait(false) is not null)
        {
            throw new ApiException(ProblemTypes.SafeExists, $"a Safe named {name} is already registered");
        }

        string factoryHex = "0x" + Convert.ToHexStringLower(factory);
        await RequireCodeAsync(chainId, "0x" + Convert.ToHexStringLower(singleton), "the Safe singleton", ct).ConfigureAwait(false);
        await RequireCodeAsync(chainId, factoryHex, "the Safe proxy factory", ct).ConfigureAwait(false);
        SafeProxyDeployment creation;
        try
        {
            creation = new SafeProxyDeployment(singleton, [.. owners.Select(k => EthereumAddress.FromPublicKeyBytes(k.PublicKey))], threshold, fallbackHandler,
                deploy.SaltNonce ?? new BigInteger(Keccak256.HashData(System.Text.Encoding.UTF8.GetBytes("conclave-safe-v1\n" + name)), isUnsigned: true, isBigEndian: true));
        }
        catch (ArgumentException)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "the owner keys must have distinct Ethereum addresses and saltNonce must be a uint256");
        }

        // Where the factory will put the proxy (EIP-1014), from its own creation code; a contract already there means this
        // salt nonce was used (a retried request): nothing is sent.
        byte[] creationCode = AbiBytes(await CallAsync(chainId, factoryHex, SafeProxyDeployment.ProxyCreationCodeSelector, ct).ConfigureAwait(false));
        byte[] predicted = creation.PredictAddress(factory, creationCode);
        string safe = "0x" + Convert.ToHexStringLower(predicted);
        if (await HasCodeAsync(chainId, safe, ct).ConfigureAwait(false))
        {
            throw new ApiException(ProblemTypes.SafeExists,
                $"a contract already exists at {safe}, where this salt nonce deploys the Safe: register it with \"address\", or give another saltNonce");
        }

        var draft = new TransactionDraft(chainId, factory, BigInteger.Zero, creation.CreateProxyWithNonceCalldata(), null, null, null, null);
        BuiltTransaction sent = await transactions.BuildSignAndSendAsync(caller, deployer, draft, true, route, beforeRelease, ct).ConfigureAwait(false);
        JsonObject receipt = await ReceiptAsync(chainId, sent.Hash, safe, ct).ConfigureAwait(false);
        string topic = "0x" + Convert.ToHexStringLower(SafeProxyDeployment.ProxyCreationTopic);
        string proxyTopic = "0x" + new string('0', 24) + safe[2..];
        bool created = receipt["logs"] is JsonArray logs && logs.Any(l => l is JsonObject o
            && string.Equals(Text(o["address"]), factoryHex, StringComparison.OrdinalIgnoreCase)
            && o["topics"] is JsonArray t && t.Count >= 2 && string.Equals(Text(t[0]), topic, StringComparison.OrdinalIgnoreCase)
            && string.Equals(Text(t[1]), proxyTopic, StringComparison.OrdinalIgnoreCase));
        if (!created)
        {
            throw new ApiException(ProblemTypes.SafeMismatch, $"transaction {sent.Hash} was mined without a ProxyCreation event for {safe}: nothing was registered");
        }

        try
        {
            SafeRecord record = await VerifyAndStoreAsync(name, chainId, safe, owners, threshold, ct).ConfigureAwait(false);
            long block = (long)ChainUpstreams.ParseQuantity(receipt["blockNumber"], "blockNumber");
            return new DeployedSafe(record, sent, creation.SaltNonce, "0x" + Convert.ToHexStringLower(singleton), factoryHex, block);
        }
        catch (ApiException e) when (e.Problem.Status is >= 400 and < 500)
        {
            throw new ApiException(e.Problem with { Detail = $"the Safe was deployed at {safe} (transaction {sent.Hash}) but not registered: {e.Problem.Detail}" });
        }
    }

    /// <summary>The name, owners and threshold of a registration; the owner keys (each with an Ethereum address).</summary>
    private async Task<IReadOnlyList<KeyRecord>> CheckRegistrationAsync(string name, long chainId, IReadOnlyList<string> ownerKeyNames, int threshold, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(name);
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

        return owners;
    }

    /// <summary>The chain decides who owns the Safe: every key must be an owner, and the threshold must be the Safe's. Then stored.</summary>
    private async Task<SafeRecord> VerifyAndStoreAsync(string name, long chainId, string safe, IReadOnlyList<KeyRecord> owners, int threshold, CancellationToken ct)
    {
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

    /// <summary>
    /// The caller a held request was made by, for the decisions made when it runs after approval: the admin token's
    /// principal, or a stored principal that is not disabled.
    /// </summary>
    public async Task<CallerIdentity> CallerAsync(string principalId, CancellationToken ct)
    {
        if (principalId == CallerIdentity.Admin.Principal.Id)
        {
            return CallerIdentity.Admin;
        }

        Conclave.Storage.Principals.PrincipalRecord row = await keys.Store.Principals.GetAsync(principalId, ct).ConfigureAwait(false)
            ?? throw new ApiException(ProblemTypes.UnknownPrincipal, "the principal that made the request no longer exists");
        return row.Disabled
            ? throw new ApiException(ProblemTypes.Forbidden, "the principal that made the request is disabled")
            : new CallerIdentity(Conclave.Server.Api.Identity.PrincipalCodec.ToPolicy(row), AuthMethod.HttpSignature, null);
    }

    /// <param name="beforeRelease">Awaited before any signature or transaction leaves the server (the audit intent).</param>
    /// <param name="holdForApproval">A decision that requires approval holds the whole request (202, <see cref="HeldForApprovalException"/>)
    /// instead of refusing it with its decision.</param>
    /// <param name="approved">The request runs after its approval: the decisions it names are not made again.</param>
    public async Task<SafeTransactionResult> SignAndExecuteAsync(CallerIdentity caller, SafeRecord safe, SafeTransactionRequest request, string route,
        Func<Task> beforeRelease, CancellationToken ct, bool holdForApproval = false, SafeApproval? approved = null)
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
        if (approved is not null && approved.SafeTxHash != "0x" + Convert.ToHexStringLower(hash))
        {
            throw new ApiException(ProblemTypes.SafeMismatch, "the request no longer hashes to the SafeTx hash it was approved for: nothing was signed");
        }

        // What every decision's request hash covers, and what a held request stores and runs again once approved: the
        // Safe, the call, the nonce read now (so approvers approve one SafeTx hash), the signers, the executor and the caller.
        JsonObject described = HeldBody(caller, safe, request, executor, nonce, hash);
        string body = described.ToJsonString();

        // Policy for every owner signature and the execution (each decided as the call the Safe makes) before anything is
        // signed; a decision that needs approval holds the whole request once. A failure gives back every grant made.
        var steps = signers.Select(k => (Step: SignerStep, Key: k)).ToList();
        if (executor is not null)
        {
            steps.Add((ExecutorStep, executor));
        }

        var grants = new List<PolicyGrant>();
        var explanations = new List<PolicyExplanation>();
        (PolicyGrant? Grant, PolicyExplanation Explanation)? execution = null;
        var held = new List<(string Decision, KeyRecord Key, OperationRequest Op, ServerDecision Held, DateTimeOffset At)>();
        bool done = false;
        try
        {
            foreach ((string step, KeyRecord key) in steps)
            {
                string decision = step + ":" + key.Id;
                VenueRegistry venues = await transactions.VenuesAsync(ct).ConfigureAwait(false);
                OperationRequest op = SigningOperations.ForTransaction(caller.Principal, key, venues, safe.ChainId, request.To, request.Data, request.Value);
                (PolicyGrant? Grant, PolicyExplanation Explanation) made;
                if (approved is not null && approved.Decisions.Contains(decision))
                {
                    made = (null, approved.Policy); // the approval reserved its counters
                }
                else if (holdForApproval)
                {
                    (PolicyGrant? grant, ServerDecision? waiting, DateTimeOffset at) = await policy.AuthorizeOrDeferAsync(caller, key, op, route, body, ct).ConfigureAwait(false);
                    if (waiting is not null)
                    {
                        held.Add((decision, key, op, waiting, at));
                        continue;
                    }

                    made = (grant, grant!.Explanation);
                }
                else
                {
                    PolicyGrant grant = await policy.AuthorizeAsync(caller, key, op, route, body, null, ct).ConfigureAwait(false);
                    made = (grant, grant.Explanation);
                }

                if (made.Grant is { } g)
                {
                    grants.Add(g);
                }

                if (step == ExecutorStep)
                {
                    execution = made;
                }
                else
                {
                    explanations.Add(made.Explanation);
                }
            }

            if (held.Count > 0)
            {
                throw await HoldAsync(caller, route, body, described, held, ct).ConfigureAwait(false);
            }

            var signatures = new List<SafeOwnerSignature>();
            var raw = new List<(byte[] Signature64, int RecoveryId)>();
            foreach (KeyRecord key in signers)
            {
                SignatureResult sig = await keys.SignDigestEcdsaAsync(key, hash, ct).ConfigureAwait(false);
                int recoveryId = sig.RecoveryId ?? throw new InvalidOperationException("an ECDSA signature came without its recovery id");
                raw.Add((sig.Signature, recoveryId));
                byte[] packedOne = new byte[SafeSignatures.SignatureSizeInBytes];
                sig.Signature.CopyTo(packedOne, 0);
                packedOne[64] = (byte)(27 + recoveryId);
                signatures.Add(new SafeOwnerSignature(key.Name, AddressOf(key), packedOne));
            }

            byte[] packed = SafeSignatures.Pack(hash, raw);
            BuiltTransaction? sent = null;
            if (executor is not null)
            {
                // The executor's transaction carries exactly the call decided above; it is not decided again.
                var draft = new TransactionDraft(safe.ChainId, safeAddress, BigInteger.Zero, tx.ExecTransactionCalldata(packed), null, null, null, null);
                sent = await transactions.BuildSignAndSendAsync(caller, executor, draft, true, route, beforeRelease, ct, null, execution).ConfigureAwait(false);
            }
            else
            {
                await beforeRelease().ConfigureAwait(false);
            }

            done = true;
            return new SafeTransactionResult(safe, nonce, hash, signatures, packed, sent, explanations);
        }
        finally
        {
            if (!done)
            {
                foreach (PolicyGrant g in grants)
                {
                    await policy.ReleaseAsync(g).ConfigureAwait(false); // releasing one twice (the executor's) is harmless
                }
            }
        }
    }

    /// <summary>
    /// Holds a Safe transaction whose decisions need approval as one request (route <see cref="ApprovalService.SafeRoute"/>):
    /// every approval of every held decision must be met (as for several granting policy documents), and their velocity
    /// reservations are made together when it is approved. The request hash is the first held decision's (the route, its
    /// key, the principal and the body); the stored body adds which decisions the approval stands for.
    /// </summary>
    private async Task<HeldForApprovalException> HoldAsync(CallerIdentity caller, string route, string body, JsonObject described,
        List<(string Decision, KeyRecord Key, OperationRequest Op, ServerDecision Held, DateTimeOffset At)> held, CancellationToken ct)
    {
        ServerDecision first = held[0].Held;
        ServerDecision merged = first with
        {
            Rules = [.. held.SelectMany(h => h.Held.Rules).Distinct(StringComparer.Ordinal)],
            Reasons = [.. held.SelectMany(h => h.Held.Reasons).Distinct(StringComparer.Ordinal)],
            Reservations = [.. held.SelectMany(h => h.Held.Reservations)],
            Approvals = [.. held.SelectMany(h => h.Held.Approvals)],
        };
        var stored = (JsonObject)described.DeepClone();
        stored["held"] = new JsonArray([.. held.Select(h => (JsonNode)JsonValue.Create(h.Decision))]);
        byte[] requestHash = PolicyGate.RequestHash(route, held[0].Key.Id, caller.Principal.Id, body);
        HeldResponse response = await approvals.Sink(ApprovalService.SafeRoute, held[0].Key, caller, Conclave.Policy.Operations.Operations.Name(held[0].Op.Operation), stored.ToJsonString())(
            merged, requestHash, held[0].At, ct).ConfigureAwait(false);
        return new HeldForApprovalException(response);
    }

    private static JsonObject HeldBody(CallerIdentity caller, SafeRecord safe, SafeTransactionRequest request, KeyRecord? executor, BigInteger nonce, byte[] hash) => new()
    {
        ["safe"] = safe.Name,
        ["address"] = safe.Address,
        ["chainId"] = safe.ChainId,
        ["to"] = "0x" + Convert.ToHexStringLower(request.To),
        ["value"] = request.Value.ToString(CultureInfo.InvariantCulture),
        ["data"] = "0x" + Convert.ToHexStringLower(request.Data),
        ["nonce"] = nonce.ToString(CultureInfo.InvariantCulture),
        ["safeTxHash"] = "0x" + Convert.ToHexStringLower(hash),
        ["signers"] = new JsonArray([.. request.Signers.Select(s => (JsonNode)JsonValue.Create(s))]),
        ["execute"] = request.Execute,
        ["executor"] = executor?.Name,
        ["principal"] = caller.Principal.Id,
    };

    /// <summary>A Safe's name: 1-64 characters from [A-Za-z0-9._:@-].</summary>
    public static bool IsName(string? name) =>
        name is { Length: > 0 and <= 64 } && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '@' or '-');

    private static KeyRecord EthereumKey(KeyRecord key) => EthereumTransactions.HasEthereumAddress(key) ? key
        : throw new ApiException(ProblemTypes.Unsupported, $"key {key.Name} ({key.Scheme}) has no Ethereum address and cannot own a Safe or send its transactions");

    private static string AddressOf(KeyRecord key) => "0x" + Convert.ToHexStringLower(EthereumAddress.FromPublicKeyBytes(key.PublicKey));

    private static string Short(string s) => s.Length <= 64 ? s : s[..64];

    private static string? Text(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private void RequireUpstream(long chainId)
    {
        if (!transactions.Upstreams.Has(chainId))
        {
            throw new ApiException(ProblemTypes.UnknownChain, $"chain {chainId.ToString(CultureInfo.InvariantCulture)} has no upstream in server.json (upstreams)");
        }
    }

    private static byte[] Selector(string signature) => ChainUpstreams.Selector(signature);

    private async Task<bool> HasCodeAsync(long chainId, string address, CancellationToken ct) =>
        Text(await transactions.CallAsync(chainId, "eth_getCode", [address, "latest"], ct).ConfigureAwait(false)) is { Length: > 2 };

    private async Task RequireCodeAsync(long chainId, string address, string what, CancellationToken ct)
    {
        if (!await HasCodeAsync(chainId, address, ct).ConfigureAwait(false))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"{what} at {address} has no code on chain {chainId.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    /// <summary>The receipt of a transaction just sent, waiting up to <see cref="DeploymentWait"/>; a failed one is 422.</summary>
    private async Task<JsonObject> ReceiptAsync(long chainId, string hash, string safe, CancellationToken ct)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (await transactions.CallAsync(chainId, "eth_getTransactionReceipt", [hash], ct).ConfigureAwait(false) is JsonObject receipt)
            {
                return Text(receipt["status"]) == "0x1" ? receipt
                    : throw new ApiException(ProblemTypes.ChainRefused, $"the deployment transaction {hash} failed on chain: nothing was registered");
            }

            if (waited.Elapsed > DeploymentWait)
            {
                throw new ApiException(ProblemTypes.Timeout,
                    $"the deployment transaction {hash} was sent but not mined within {DeploymentWait.TotalSeconds:F0} s; nothing was registered: once it is mined, register the Safe at {safe} with \"address\"");
            }

            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }

    /// <summary>eth_call of a function without arguments on the Safe; the returned bytes.</summary>
    private async Task<byte[]> CallAsync(long chainId, string to, byte[] selector, CancellationToken ct)
    {
        byte[]? result;
        try
        {
            result = await transactions.Upstreams.EthCallAsync(chainId, to, selector, ct).ConfigureAwait(false);
        }
        catch (UpstreamException e)
        {
            throw e.Answered
                ? new ApiException(ProblemTypes.SafeMismatch, "the address does not answer as a Safe: " + e.Message)
                : new ApiException(ProblemTypes.UpstreamUnavailable, e.Message);
        }

        return result ?? throw new ApiException(ProblemTypes.UpstreamUnavailable, "the upstream answered eth_call with something that is not hex data");
    }

    /// <summary>An ABI-encoded <c>bytes</c> return value: offset word (32), length word, the bytes.</summary>
    private static byte[] AbiBytes(byte[] r)
    {
        if (r.Length < 64 || Uint(r, 0) != 32 || Uint(r, 1) > r.Length - 64)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "the proxy factory does not answer proxyCreationCode() as SafeProxyFactory 1.4.1 does");
        }

        return r.AsSpan(64, (int)Uint(r, 1)).ToArray();
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
