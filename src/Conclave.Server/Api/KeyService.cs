using Conclave.PostQuantum;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Conclave.Chains.Bitcoin;
using Conclave.Chains.Derivation;
using Conclave.Chains.Ethereum;
using Conclave.Chains.Solana;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Secp256k1;
using Conclave.Crypto.Signing;
using Conclave.Server.Config;
using Conclave.Server.Coordinator;
using Conclave.Storage;
using Conclave.Storage.Keys;
using Conclave.Node.Rpc;
using Conclave.Server.Threshold.Dkls23;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Wallets;
using Conclave.Wallets.Hd;

namespace Conclave.Server.Api;

/// <summary>
/// Keys behind the API. Single-key schemes (ecdsa-secp256k1, schnorr-bip340, ed25519) are generated here with the
/// health-checked generator and kept in the server store as envelope-encrypted material (private key ‖ 32-byte chain
/// code). FROST schemes (frost-ed25519, frost-secp256k1, frost-taproot) and ecdsa-dkls23 keep one share per signer node;
/// the server store holds only the public key package (as the key's material) and the key's holders. A threshold key is
/// registered with its coordinator when it is first used after start (<see cref="FrostKeyAsync"/>,
/// <see cref="DklsKeyAsync"/>), never all at start: eviction, the node list and readiness read the holders of every key
/// from the store (KeyService.Holdings.cs).
/// </summary>
public sealed partial class KeyService : IDisposable
{
    private const int ChainCodeSizeInBytes = 32;
    private readonly IConclaveStore _store;
    private readonly FrostCoordinator _frost;
    private readonly DklsCoordinator _dkls;
    private readonly Cluster _cluster;
    private readonly ServerConfig _config;
    /// <summary>Decrypted signing keys by id, version and whether it is the BIP-86 tweaked key of a schnorr-bip340 key.</summary>
    private readonly ConcurrentDictionary<(string Id, int Version, bool Tweaked), SoftwareSigningKey> _loaded = new();
    private readonly ConcurrentDictionary<string, string> _byEthereumAddress = new(StringComparer.OrdinalIgnoreCase);

    public KeyService(IConclaveStore store, FrostCoordinator frost, Cluster cluster, ServerConfig config)
    {
        _store = store;
        _frost = frost;
        _cluster = cluster;
        _config = config;
        // DKLs23 keys run on the same engine (frost.Engine: the DKG and repair rounds make their shares, node health and
        // eviction are shared) and the same rotation log.
        _dkls = new DklsCoordinator(frost.Engine) { Runs = frost.Runs, Owner = frost.Owner, RunLease = frost.RunLease, PresignPoolSize = config.DklsPresignPoolSize, PresignStepsInFlight = config.SignStepsInFlight };
    }

    /// <summary>
    /// Cancelled when the server stops. Rotation runs run under it, never under a request's token: a client that
    /// disconnects or a request that times out does not cut a run in half (it answers 202 and the run goes on).
    /// </summary>
    public CancellationToken Lifetime { get; set; }

    /// <summary>Told of signer nodes named as culprits while signing (the risk subsystem's culprit signal); must not throw.</summary>
    public Action<IReadOnlyList<uint>>? CulpritObserved { get; set; }

    public IConclaveStore Store => _store;

    public FrostCoordinator Frost => _frost;

    /// <summary>The coordinator of ecdsa-dkls23 keys (threshold ECDSA, docs/DKLS23.md).</summary>
    public DklsCoordinator Dkls => _dkls;

    /// <summary>The store-versus-nodes check (set by the host); a key it reports out of sync is refused with its problem.</summary>
    public KeyConsistency? Consistency { get; set; }

    private void RequireInSync(KeyRecord key)
    {
        if (Consistency?.BlockingReport(key.Id) is { } r)
        {
            throw new ApiException(ProblemTypes.KeyOutOfSync, r.Problem ?? $"key {key.Name} is {r.State}");
        }
    }

    public static IReadOnlyList<string> Schemes { get; } =
        [.. SignatureSchemes.SingleKey.Select(s => s.Name), .. FrostCiphersuite.All.Select(s => s.SchemeName), DklsScheme.Name, .. PostQuantumSchemes.All.Select(s => s.Name),
            .. Conclave.Hsm.Schemes.HsmSignatureSchemes.All.Select(s => s.Name)];

    /// <summary>Keys inside the PKCS#11 token the server holds a session to (set by the host; none configured by default).</summary>
    public HsmKeys Hsm { get; set; } = new(null);

    /// <summary>Schemes with an Ethereum address (eth_accounts and the /rpc signer).</summary>
    private static bool IsEthereumScheme(string scheme) => scheme is "ecdsa-secp256k1" or "hsm-ecdsa-secp256k1" or DklsScheme.Name;

    /// <summary>Schemes whose private key the server holds in its encrypted store: the single-key and the post-quantum ones.</summary>
    private static bool TryGetSoftwareScheme(string name, out SoftwareSignatureScheme? scheme)
        => SignatureSchemes.TryGet(name, out scheme) || PostQuantumSchemes.TryGet(name, out scheme);

    /// <summary>
    /// True when the server makes the key's signatures itself (a key in its store or in its HSM), with no node asked: nothing
    /// of the request leaves the server before its response, so its held audit entries can be committed while it signs
    /// (<see cref="RequestAudit.StartFlush"/>) instead of after.
    /// </summary>
    public static bool SignsInProcess(KeyRecord key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return TryGetSoftwareScheme(key.Scheme, out _) || HsmKeys.IsHsmScheme(key.Scheme, out _);
    }

    private const int MaxLabels = 64;
    private const int MaxLabelValueLength = 256;
    private readonly ConcurrentDictionary<string, byte> _creating = new(StringComparer.Ordinal);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9._/-]{1,64}$")]
    private static partial Regex LabelKeyPattern();

    public async Task<KeyRecord> CreateAsync(CreateKeyRequest req, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(req);

        // Everything about the request is checked before any key material exists: a FROST key's DKG leaves live
        // shares on the nodes, so nothing the store would refuse afterwards (name, labels) may be found out later.
        if (req.Name is null)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "name is required");
        }

        if (!NamePattern().IsMatch(req.Name))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "name is invalid: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit");
        }

        if (string.IsNullOrEmpty(req.Scheme))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "scheme is required");
        }

        ValidateLabels(req.Labels);
        bool single = TryGetSoftwareScheme(req.Scheme, out SoftwareSignatureScheme? singleScheme);
        Conclave.Hsm.Schemes.HsmSignatureScheme? hsmScheme = null;
        bool hsm = !single && HsmKeys.IsHsmScheme(req.Scheme, out hsmScheme);
        single |= hsm;
        FrostCiphersuite? suite = null;
        if (!single && !FrostCiphersuite.TryGet(req.Scheme, out suite) && req.Scheme != DklsScheme.Name)
        {
            throw new ApiException(ProblemTypes.UnknownScheme, $"unknown scheme; supported: {string.Join(", ", Schemes)}");
        }

        int threshold = 1, participants = 1;
        if (single)
        {
            if (req.Threshold is not (null or 1) || req.Participants is not (null or 1))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, $"{req.Scheme} is a single-key scheme: threshold and participants must be 1 or absent");
            }
        }
        else
        {
            participants = req.Participants ?? _frost.Trusted(_cluster.NodeIds).Count;
            threshold = req.Threshold ?? Math.Min(_config.Threshold, participants);
            ValidateCommittee(threshold, participants, _cluster.NodeIds.Count);
        }

        // The name is held for this server while the key is made, so two concurrent requests for one name do not both
        // run a DKG; the store's unique name is the final word across replicas.
        if (!_creating.TryAdd(req.Name, 0))
        {
            throw new ApiException(ProblemTypes.KeyExists, $"a key named {req.Name} is being created");
        }

        try
        {
            if (await _store.Keys.GetByNameAsync(req.Name, ct).ConfigureAwait(false) is not null)
            {
                throw new ApiException(ProblemTypes.KeyExists, $"a key named {req.Name} already exists");
            }

            string id = "k" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
            if (hsm)
            {
                return await CreateHsmAsync(id, req, hsmScheme!, ct).ConfigureAwait(false);
            }

            if (single)
            {
                return await CreateSingleAsync(id, req, singleScheme!, ct).ConfigureAwait(false);
            }

            // The key row is written by the run's commit (FrostCoordinator.FinishAsync through the store's rotation log),
            // so a key exists in the store exactly when every node committed its share.
            uint[] nodes = [.. CommitteeOf(participants)];
            var plan = new RotationPlan(Storage.Rotation.RotationKind.KeyGeneration, id, suite?.SchemeName ?? DklsScheme.Name, threshold, nodes, nodes, [], 0, req.Name, req.Labels);
            await RunAsync(plan, ct).ConfigureAwait(false);
            return await _store.Keys.GetAsync(id, ct).ConfigureAwait(false) ?? throw new ApiException(ProblemTypes.Internal, "the new key was not stored");
        }
        finally
        {
            _creating.TryRemove(req.Name, out _);
        }
    }

    /// <summary>
    /// The committee rule shared by key creation and reshare: 2 ≤ threshold ≤ participants ≤ the number of signer
    /// nodes. Each message names the field it is about.
    /// </summary>
    public static void ValidateCommittee(int threshold, int participants, int nodes)
    {
        if (participants < 2 || participants > nodes)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"participants must be between 2 and the number of signer nodes ({nodes})");
        }

        if (threshold < 2 || threshold > participants)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"threshold must be between 2 and participants ({participants})");
        }
    }

    /// <summary>Labels: at most 64; keys 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-', '/'; values at most 256 characters without control characters.</summary>
    private static void ValidateLabels(Dictionary<string, string>? labels)
    {
        if (labels is null)
        {
            return;
        }

        if (labels.Count > MaxLabels)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"labels: at most {MaxLabels} labels");
        }

        foreach ((string key, string value) in labels)
        {
            if (!LabelKeyPattern().IsMatch(key))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "labels: each key is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-' or '/'");
            }

            if (value is null || value.Length > MaxLabelValueLength || value.Any(char.IsControl))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, $"labels: the value of '{key}' must be a string of at most {MaxLabelValueLength} characters without control characters");
            }
        }
    }

    private async Task<KeyRecord> CreateSingleAsync(string id, CreateKeyRequest req, SoftwareSignatureScheme scheme, CancellationToken ct)
    {
        using SoftwareSigningKey key = scheme.GenerateKey(KeyExportPolicy.AllowExport, HealthCheckedRandomSource.System);
        using SecretBuffer priv = key.ExportPrivateKey();
        using SecretBuffer material = SecretBuffer.Allocate(priv.Length + ChainCodeSizeInBytes, SecretMemoryKind.Pinned);
        priv.ReadOnlySpan.CopyTo(material.Span);
        HealthCheckedRandomSource.System.Fill(material.Span[priv.Length..]);
        return await _store.Keys.CreateAsync(new NewKey(id, req.Name!, scheme.Name, key.PublicKey.ToArray(), 1, 1, req.Labels), material, ct).ConfigureAwait(false);
    }

    /// <summary>An HSM key: the key pair is generated inside the token under the key's id; the store keeps the row only.</summary>
    private async Task<KeyRecord> CreateHsmAsync(string id, CreateKeyRequest req, Conclave.Hsm.Schemes.HsmSignatureScheme scheme, CancellationToken ct)
    {
        byte[] publicKey = Hsm.Generate(scheme, id);
        try
        {
            return await _store.Keys.CreateAsync(new NewKey(id, req.Name!, scheme.Name, publicKey, 1, 1, req.Labels), null, ct).ConfigureAwait(false);
        }
        catch
        {
            Hsm.Delete(id);
            throw;
        }
    }

    /// <summary>The key a route names: the record the audit middleware already read for this request, else the store's.</summary>
    public Task<KeyRecord> GetAsync(Microsoft.AspNetCore.Http.HttpContext ctx, string name, CancellationToken ct) =>
        AuditTrail.Key(ctx) is { } k && k.Name == name ? Task.FromResult(k) : GetAsync(name, ct);

    public async Task<KeyRecord> GetAsync(string name, CancellationToken ct) =>
        await _store.Keys.GetByNameAsync(name, ct).ConfigureAwait(false) ?? throw new ApiException(ProblemTypes.UnknownKey, $"no key named {name}");

    /// <summary>
    /// Refuses a sign request whose input does not fit the key's scheme (neither input, a digest for a message scheme,
    /// a message for a digest scheme, bad hex) with the same problem <see cref="SignAsync"/> gives, without signing:
    /// the routes check this before policy decides, so a malformed request is a 400, not a policy decision.
    /// </summary>
    public void ValidateSignInput(KeyRecord key, SignRequest req)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(req);
        if (HsmKeys.IsHsmScheme(key.Scheme, out Conclave.Hsm.Schemes.HsmSignatureScheme? hsmScheme))
        {
            _ = SignInput(hsmScheme!.InputKind == SignInputKind.Digest32, key.Scheme, req);
        }
        else if (TryGetSoftwareScheme(key.Scheme, out SoftwareSignatureScheme? single))
        {
            _ = SignInput(single!.InputKind == SignInputKind.Digest32, key.Scheme, req);
        }
        else if (FrostCiphersuite.TryGet(key.Scheme, out _))
        {
            _ = SignInput(false, key.Scheme, req);
        }
        else if (key.Scheme == DklsScheme.Name)
        {
            _ = SignInput(true, key.Scheme, req);
        }
    }

    public async Task<SignResponse> SignAsync(KeyRecord key, SignRequest req, CancellationToken ct)
    {
        if (key.State != KeyState.Active)
        {
            throw new ApiException(ProblemTypes.KeyNotActive, $"key {key.Name} is {key.State.ToString().ToLowerInvariant()}");
        }

        IReadOnlyList<uint>? path = req.Path is null ? null : ParsePath(req.Path);
        string? normalized = path is null ? null : string.Join('/', path.Select(i => i.ToString(CultureInfo.InvariantCulture)));
        if (path is { Count: 0 })
        {
            path = null;
            normalized = null;
        }

        // schnorr-bip340 signs as a taproot key-path spend (the BIP-86 tweaked key, which the address shows) unless the
        // request asks for plain BIP-340 under the internal key with "untweaked": true. No other scheme has the option.
        bool untweaked = req.Untweaked == true;
        if (untweaked && key.Scheme != SchnorrBip340.SchemeName)
        {
            throw new ApiException(ProblemTypes.Unsupported, key.Scheme == "frost-taproot"
                ? "frost-taproot keys sign only under their BIP-86 output key (a taproot key-path spend); \"untweaked\" is for schnorr-bip340 keys"
                : $"\"untweaked\" applies to schnorr-bip340 keys only, not {key.Scheme}");
        }

        if (HsmKeys.IsHsmScheme(key.Scheme, out Conclave.Hsm.Schemes.HsmSignatureScheme? hsmScheme))
        {
            byte[] input = SignInput(hsmScheme!.InputKind == SignInputKind.Digest32, key.Scheme, req);
            if (path is not null)
            {
                throw new ApiException(ProblemTypes.Unsupported, $"{key.Scheme} keys have no derived children (the token holds one key pair)");
            }

            SignatureResult r = await Hsm.SignAsync(key, input, ct).ConfigureAwait(false);
            return new SignResponse(Convert.ToHexStringLower(r.Signature), r.RecoveryId, Convert.ToHexStringLower(key.PublicKey), key.Version, null, null);
        }

        if (TryGetSoftwareScheme(key.Scheme, out SoftwareSignatureScheme? single))
        {
            byte[] input = SignInput(single!.InputKind == SignInputKind.Digest32, key.Scheme, req);
            bool tweak = key.Scheme == SchnorrBip340.SchemeName && !untweaked;
            if (path is not null)
            {
                (byte[] signature, int? recoveryId, byte[] childKey) = await SignWithChildAsync(key, single, path, input, tweak, ct).ConfigureAwait(false);
                return new SignResponse(Convert.ToHexStringLower(signature), recoveryId, Convert.ToHexStringLower(childKey), key.Version, normalized,
                    tweak ? OutputKeyHex(key.Scheme, childKey) : null);
            }

            SoftwareSigningKey sk = await LoadSigningKeyAsync(key, single, tweak, ct).ConfigureAwait(false);
            SignatureResult r = sk.Sign(input);
            return new SignResponse(Convert.ToHexStringLower(r.Signature), r.RecoveryId, Convert.ToHexStringLower(key.PublicKey), key.Version, normalized,
                tweak ? OutputKeyHex(key.Scheme, key.PublicKey) : null);
        }

        if (FrostCiphersuite.TryGet(key.Scheme, out FrostCiphersuite? suite))
        {
            byte[] message = SignInput(false, key.Scheme, req);
            RequireInSync(key);
            _ = await FrostKeyAsync(key, suite!, ct).ConfigureAwait(false);
            FrostSignature sig;
            try
            {
                sig = await _frost.SignAsync(key.Id, message, path ?? [], ct).ConfigureAwait(false);
            }
            catch (CulpritException e)
            {
                CulpritObserved?.Invoke(e.Culprits);
                // The misbehaving node is named in the audit log as well as in the problem returned.
                await _store.Audit.AppendAsync(new Conclave.Storage.Audit.AuditEntryInput("coordinator", "sign.culprit", key.Id, null, "deny",
                    CulpritDetail(e)), CancellationToken.None).ConfigureAwait(false);
                throw;
            }

            // The version and key that actually signed (a refresh may have completed since the request began). For
            // frost-taproot publicKey is the (child) internal key and outputKey the BIP-86 key the signature verifies under.
            bool taproot = ReferenceEquals(suite, FrostCiphersuite.Secp256k1Taproot);
            return new SignResponse(Convert.ToHexStringLower(sig.Signature), null, Convert.ToHexStringLower(sig.InternalKey), sig.KeyVersion, normalized,
                taproot ? Convert.ToHexStringLower(sig.VerificationKey) : null);
        }

        if (key.Scheme == DklsScheme.Name)
        {
            // Threshold ECDSA signs a 32-byte digest (the caller hashes: Keccak-256 for Ethereum, SHA-256d for Bitcoin).
            byte[] digest = SignInput(true, key.Scheme, req);
            DklsSignatureResult sig = await SignDklsAsync(key, digest, path ?? [], ct).ConfigureAwait(false);
            return new SignResponse(Convert.ToHexStringLower(sig.Signature), sig.RecoveryId, Convert.ToHexStringLower(sig.PublicKey), sig.KeyVersion, normalized, null);
        }

        throw new ApiException(ProblemTypes.Unsupported, $"scheme {key.Scheme} cannot sign on this server");
    }

    /// <summary>
    /// A signature of an ecdsa-dkls23 key over the cluster (DklsCoordinator): a node that sent a bad value is named in the
    /// audit log as well as in the 502 problem, as for FROST keys.
    /// </summary>
    private async Task<DklsSignatureResult> SignDklsAsync(KeyRecord key, byte[] digest, IReadOnlyList<uint> path, CancellationToken ct)
    {
        _ = await DklsKeyAsync(key, ct).ConfigureAwait(false);
        try
        {
            return await _dkls.SignDigestAsync(key.Id, digest, path, ct).ConfigureAwait(false);
        }
        catch (CulpritException e)
        {
            // As for FROST keys: the risk service counts the culprit (a misbehaving signer raises the level).
            CulpritObserved?.Invoke(e.Culprits);
            await _store.Audit.AppendAsync(new Conclave.Storage.Audit.AuditEntryInput("coordinator", "sign.culprit", key.Id, null, "deny", CulpritDetail(e)),
                CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The result text of a <c>sign.culprit</c> audit entry: the culprits (or why nobody is named), the reason the
    /// coordinator proved for each, and the evidence the culprits signed (for a DKLs23 equivocation its two round-one
    /// broadcasts, base64 envelopes that Node.Threshold.Dkls23.DklsEquivocation.Proves checks with the node's identity key).
    /// </summary>
    internal static string CulpritDetail(CulpritException e) =>
        (e.Culprits.Count > 0 ? "culprit node " + string.Join(",", e.Culprits) : "no culprit: " + e.Message)
        + string.Concat(e.Reasons.Select(r => $"; node {r.Node}: {r.Reason}"))
        + (e.Evidence.Count > 0 ? "; evidence " + string.Join(" ", e.Evidence.Select(Convert.ToBase64String)) : "");

    /// <summary>The coordinator's registration of a DKLs23 key at the version the store holds (registered again when missing or older).</summary>
    private async Task<DklsKeyInfo> DklsKeyAsync(KeyRecord key, CancellationToken ct)
    {
        DklsKeyInfo? info = _dkls.Find(key.Id);
        if (info is not null && info.Version >= key.Version)
        {
            return info;
        }

        info = new DklsKeyInfo(key.Id, await ReadDklsKeyAsync(key, ct).ConfigureAwait(false), key.Version);
        await CheckHoldersAsync(key, info.Nodes).ConfigureAwait(false);
        _dkls.Register(info);
        return info;
    }

    private async Task<DklsPublicKey> ReadDklsKeyAsync(KeyRecord key, CancellationToken ct)
    {
        using SecretBuffer material = await _store.Keys.OpenMaterialAsync(key.Id, key.Version, ct).ConfigureAwait(false);
        DklsPublicKey pub = DklsPublicKey.FromBytes(material.ReadOnlySpan);
        if (!pub.GroupPublicKey.AsSpan().SequenceEqual(key.PublicKey))
        {
            throw new StorageException(StorageErrorKind.IntegrityCheckFailed,
                $"key '{key.Id}': the key record failed its integrity check (its stored public key does not match its public key); it is refused");
        }

        return pub;
    }

    /// <summary>
    /// Signs with the non-hardened child of a server-held key (the child POST /derive reports): secp256k1 keys through
    /// Conclave.Wallets (k + Σ IL; schnorr-bip340 from its even-Y parent, then — unless <paramref name="taprootTweak"/>
    /// is false — BIP-341 taproot_tweak_seckey of the child, as a BIP-86 wallet spends the child's P2TR output),
    /// ed25519 through Ed25519HdDerivation.SignWithChild. The child private key exists only in zeroed buffers for
    /// this one signature. Returns the child public key (for schnorr-bip340 the child's internal key).
    /// </summary>
    private async Task<(byte[] Signature, int? RecoveryId, byte[] ChildKey)> SignWithChildAsync(KeyRecord key, SoftwareSignatureScheme scheme, IReadOnlyList<uint> path, byte[] input, bool taprootTweak, CancellationToken ct)
    {
        using SecretBuffer material = await _store.Keys.OpenMaterialAsync(key.Id, key.Version, ct).ConfigureAwait(false);
        ReadOnlySpan<byte> privateKey = material.ReadOnlySpan[..scheme.PrivateKeySizeInBytes];
        ReadOnlySpan<byte> chainCode = material.ReadOnlySpan[^ChainCodeSizeInBytes..];
        switch (key.Scheme)
        {
            case "ecdsa-secp256k1":
            case "schnorr-bip340":
            {
                using SecretBuffer child = Bip32NonHardenedPrivateDerivation.DeriveChild(privateKey, chainCode, KeyPath.FromIndices([.. path]), evenYParent: key.Scheme == "schnorr-bip340");
                using SoftwareSigningKey childKey = scheme.ImportPrivateKey(child.ReadOnlySpan);
                if (taprootTweak)
                {
                    using SecretBuffer tweaked = TaprootPrivateKey.Bip86Tweak(child.ReadOnlySpan);
                    using SoftwareSigningKey outputKey = scheme.ImportPrivateKey(tweaked.ReadOnlySpan);
                    return (outputKey.Sign(input).Signature, null, childKey.PublicKey.ToArray());
                }

                SignatureResult r = childKey.Sign(input);
                return (r.Signature, r.RecoveryId, childKey.PublicKey.ToArray());
            }

            case "ed25519":
            {
                (byte[] signature, byte[] childPublicKey) = Ed25519HdDerivation.SignWithChild(privateKey, chainCode, path, input);
                return (signature, null, childPublicKey);
            }

            default:
                throw new ApiException(ProblemTypes.Unsupported, $"{key.Scheme} keys have no derived children (post-quantum schemes define none)");
        }
    }

    private static IReadOnlyList<uint> ParsePath(string path)
    {
        try
        {
            return PublicDerivation.ParsePath(path);
        }
        catch (Conclave.Crypto.CryptoFormatException e) when (e.Message.Contains("hardened", StringComparison.Ordinal))
        {
            throw new ApiException(ProblemTypes.HardenedPath, e.Message);
        }
    }

    /// <summary>Signs a 32-byte digest with an ecdsa-secp256k1 key (the Ethereum JSON-RPC path): 64-byte r ‖ s and the recovery id.</summary>
    public async Task<SignatureResult> SignDigestEcdsaAsync(KeyRecord key, byte[] digest, CancellationToken ct)
    {
        if (key.State != KeyState.Active)
        {
            throw new ApiException(ProblemTypes.KeyNotActive, $"key {key.Name} is not active");
        }

        if (key.Scheme == "hsm-ecdsa-secp256k1")
        {
            return await Hsm.SignAsync(key, digest, ct).ConfigureAwait(false);
        }

        if (key.Scheme == DklsScheme.Name)
        {
            DklsSignatureResult sig = await SignDklsAsync(key, digest, [], ct).ConfigureAwait(false);
            return new SignatureResult(sig.Signature, sig.RecoveryId);
        }

        SoftwareSigningKey sk = await LoadSigningKeyAsync(key, SignatureSchemes.EcdsaSecp256k1, false, ct).ConfigureAwait(false);
        return sk.Sign(digest);
    }

    private static byte[] SignInput(bool digest, string scheme, SignRequest req)
    {
        if (req.Message is null && req.Digest is null)
        {
            throw new ApiException(ProblemTypes.WrongInput, digest
                ? $"the request has neither \"message\" nor \"digest\": {scheme} signs a 32-byte digest, send \"digest\" (hex)"
                : $"the request has neither \"message\" nor \"digest\": {scheme} signs a message, send \"message\" (hex)");
        }

        if (digest)
        {
            if (req.Digest is null || req.Message is not null)
            {
                throw new ApiException(ProblemTypes.WrongInput, $"{scheme} signs a 32-byte digest: send \"digest\" (hex), not \"message\"");
            }

            byte[] d = Hex.Parse(req.Digest, "digest");
            return d.Length == 32 ? d : throw new ApiException(ProblemTypes.BadHex, "digest must be 32 bytes (64 hex digits)");
        }

        if (req.Message is null || req.Digest is not null)
        {
            throw new ApiException(ProblemTypes.WrongInput, $"{scheme} signs a message: send \"message\" (hex), not \"digest\"");
        }

        return Hex.Parse(req.Message, "message");
    }

    /// <summary>
    /// The decrypted signing key of a server-held key, kept after first use. <paramref name="taprootTweak"/>
    /// (schnorr-bip340): the BIP-86 tweaked private key (BIP-341 taproot_tweak_seckey with an empty merkle root),
    /// whose signatures verify under the output key of the key's P2TR address.
    /// </summary>
    private async Task<SoftwareSigningKey> LoadSigningKeyAsync(KeyRecord key, SoftwareSignatureScheme scheme, bool taprootTweak, CancellationToken ct)
    {
        if (_loaded.TryGetValue((key.Id, key.Version, taprootTweak), out SoftwareSigningKey? sk))
        {
            return sk;
        }

        using SecretBuffer material = await _store.Keys.OpenMaterialAsync(key.Id, key.Version, ct).ConfigureAwait(false);
        ReadOnlySpan<byte> privateKey = material.ReadOnlySpan[..scheme.PrivateKeySizeInBytes];
        SoftwareSigningKey loaded;
        if (taprootTweak)
        {
            using SecretBuffer tweaked = TaprootPrivateKey.Bip86Tweak(privateKey);
            loaded = scheme.ImportPrivateKey(tweaked.ReadOnlySpan);
        }
        else
        {
            loaded = scheme.ImportPrivateKey(privateKey);
        }

        if (!_loaded.TryAdd((key.Id, key.Version, taprootTweak), loaded))
        {
            loaded.Dispose();
        }

        return _loaded[(key.Id, key.Version, taprootTweak)];
    }

    public async Task<DeriveResponse> DeriveAsync(KeyRecord key, string? path, CancellationToken ct)
    {
        if (path is null)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "path is required, for example \"0/1\"");
        }

        IReadOnlyList<uint> indexes = ParsePath(path);
        string normalized = string.Join('/', indexes.Select(i => i.ToString(CultureInfo.InvariantCulture)));
        if (HsmKeys.IsHsmScheme(key.Scheme, out _))
        {
            throw new ApiException(ProblemTypes.Unsupported, $"{key.Scheme} keys have no derived children (the token holds one key pair)");
        }

        if (key.Scheme == DklsScheme.Name)
        {
            // BIP-32 CKDpub on the group key, the derivation the signers apply when a sign request names a path (DklsHd).
            (byte[] child, _) = DklsHd.DerivePublic((await DklsKeyAsync(key, ct).ConfigureAwait(false)).PublicKey, indexes);
            return new DeriveResponse(normalized, Convert.ToHexStringLower(child), AddressesFor(key.Scheme, child));
        }

        if (FrostCiphersuite.TryGet(key.Scheme, out FrostCiphersuite? suite))
        {
            // Threshold keys derive with the FROST library's HD scheme (docs/FROST.md "HD"), the one the signers apply
            // to their shares when a sign request names a path: BIP-32 CKDpub for frost-secp256k1 and frost-taproot
            // (for frost-taproot the child's x-only key is its internal key; its BIP-86 output key is the address's and
            // the one the signers tweak their child shares to), the additive tweak for frost-ed25519.
            PublicKeyPackage package = (await FrostKeyAsync(key, suite, ct).ConfigureAwait(false)).PublicKeyPackage;
            byte[] childKey = indexes.Count == 0 ? key.PublicKey : HdDerivation.DerivePath(package, indexes).VerificationKey;
            return new DeriveResponse(normalized, Convert.ToHexStringLower(childKey), AddressesFor(key.Scheme, childKey), OutputKeyHex(key.Scheme, childKey));
        }

        byte[] chainCode = await ChainCodeAsync(key, ct).ConfigureAwait(false);
        switch (key.Scheme)
        {
            case "ecdsa-secp256k1":
            {
                (byte[] child, _) = PublicDerivation.Secp256k1(key.PublicKey, chainCode, indexes);
                return new DeriveResponse(normalized, Convert.ToHexStringLower(child), AddressesFor(key.Scheme, child));
            }

            case "schnorr-bip340":
            {
                (byte[] child, _) = PublicDerivation.Secp256k1([0x02, .. key.PublicKey], chainCode, indexes);
                byte[] xonly = child[1..];
                return new DeriveResponse(normalized, Convert.ToHexStringLower(xonly), AddressesFor(key.Scheme, xonly), OutputKeyHex(key.Scheme, xonly));
            }

            case "ed25519":
            {
                (byte[] child, _, _) = PublicDerivation.Ed25519(key.PublicKey, chainCode, indexes);
                return new DeriveResponse(normalized, Convert.ToHexStringLower(child), AddressesFor(key.Scheme, child));
            }

            default:
                throw new ApiException(ProblemTypes.Unsupported, $"{key.Scheme} keys have no derivation (post-quantum schemes define no public child keys)");
        }
    }

    private async Task<byte[]> ChainCodeAsync(KeyRecord key, CancellationToken ct)
    {
        using SecretBuffer material = await _store.Keys.OpenMaterialAsync(key.Id, key.Version, ct).ConfigureAwait(false);
        return material.ReadOnlySpan[^ChainCodeSizeInBytes..].ToArray();
    }

    /// <summary>
    /// The coordinator's registration of a FROST key at the version the store holds: registered again when it is
    /// missing or older — another server replica sharing the PostgreSQL store may have created, refreshed or reshared
    /// the key (docs/OPERATIONS.md).
    /// </summary>
    private async Task<FrostKeyInfo> FrostKeyAsync(KeyRecord key, FrostCiphersuite suite, CancellationToken ct)
    {
        FrostKeyInfo? info = _frost.Find(key.Id);
        if (info is not null && info.Version >= key.Version)
        {
            // Equal, or newer than the record this request read (it raced with a refresh here): never go back.
            return info;
        }

        info = new FrostKeyInfo(key.Id, suite, await ReadPackageAsync(key, suite, ct).ConfigureAwait(false), key.Version);
        await CheckHoldersAsync(key, info.Nodes).ConfigureAwait(false);
        _frost.Register(info);
        return info;
    }

    private async Task<PublicKeyPackage> ReadPackageAsync(KeyRecord key, FrostCiphersuite suite, CancellationToken ct)
    {
        using SecretBuffer material = await _store.Keys.OpenMaterialAsync(key.Id, key.Version, ct).ConfigureAwait(false);
        PublicKeyPackage package = PublicKeyPackage.FromBytes(suite, material.ReadOnlySpan);

        // Issue 14 item 7: the stored package (sealed, bound to key id and version) must be the key the row names.
        if (!package.VerificationKey.AsSpan().SequenceEqual(key.PublicKey))
        {
            throw new StorageException(StorageErrorKind.IntegrityCheckFailed,
                $"key '{key.Id}': the key record failed its integrity check (its stored public key package does not match its public key); it is refused");
        }

        return package;
    }

    /// <summary>
    /// Refresh (new shares, same key and threshold) or reshare (a new committee of nodes 1..participants with a new
    /// threshold) of a FROST or ecdsa-dkls23 key over the cluster, as a crash-safe rotation run (docs/ROTATION.md). The run is started
    /// under the server's lifetime; the request waits for it until shortly before its own deadline and otherwise answers
    /// with the run (202) to poll at GET /v1/operations/{id}.
    /// </summary>
    public async Task<(KeyResponse? Key, OperationResponse? Pending)> RefreshOrReshareAsync(KeyRecord key, string operation, int? threshold, int? participants, CancellationToken ct)
    {
        bool dkls = key.Scheme == DklsScheme.Name;
        FrostCiphersuite? suite = null;
        if (!dkls && !FrostCiphersuite.TryGet(key.Scheme, out suite))
        {
            throw new ApiException(ProblemTypes.NotThreshold, $"{operation} applies to threshold keys; {key.Name} is a single {key.Scheme} key");
        }

        RequireInSync(key);
        if (dkls)
        {
            _ = await DklsKeyAsync(key, ct).ConfigureAwait(false);
        }
        else
        {
            _ = await FrostKeyAsync(key, suite!, ct).ConfigureAwait(false);
        }

        RotationPlan plan;
        if (operation == "refresh")
        {
            plan = dkls ? _dkls.PlanRefresh(key.Id) : _frost.PlanRefresh(key.Id);
        }
        else
        {
            int n = participants ?? key.Participants;
            int t = threshold ?? key.Threshold;
            if (n < 2 || n > _cluster.NodeIds.Count || t < 2 || t > n)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, $"reshare needs 2 ≤ threshold ≤ participants ≤ {_cluster.NodeIds.Count} (the signer nodes)");
            }

            plan = dkls
                ? await _dkls.PlanReshareAsync(key.Id, t, CommitteeOf(n), ct).ConfigureAwait(false)
                : await _frost.PlanReshareAsync(key.Id, t, CommitteeOf(n), ct).ConfigureAwait(false);
        }

        string runId;
        Task run;
        if (dkls)
        {
            (runId, Task<DklsKeyInfo> dklsRun) = StartRun(plan, session => _dkls.RotateAsync(plan, Lifetime, session));
            run = dklsRun;
        }
        else
        {
            (runId, Task<FrostKeyInfo> frostRun) = StartRun(plan);
            run = frostRun;
        }

        return await WaitOrPendingAsync(key, runId, run, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Repair (docs/ROTATION.md "Repairing a lost share"): rebuilds the share of signer node <paramref name="node"/> of
    /// a FROST or ecdsa-dkls23 key, which it lost (its store was deleted or restored without the key), from t healthy holders, as a
    /// crash-safe rotation run of kind repair (<see cref="FrostCoordinator.RepairAsync"/>). Same key, same version, same
    /// public key package. Like refresh, the run is started under the server's lifetime and a request that outlives its
    /// deadline answers with the run (202) to poll at GET /v1/operations/{id}.
    /// </summary>
    public async Task<(KeyResponse? Key, OperationResponse? Pending)> RepairAsync(KeyRecord key, int node, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        bool dkls = key.Scheme == DklsScheme.Name;
        FrostCiphersuite? suite = null;
        if (!dkls && !FrostCiphersuite.TryGet(key.Scheme, out suite))
        {
            throw new ApiException(ProblemTypes.NotThreshold, $"repair applies to threshold keys; {key.Name} is a single {key.Scheme} key");
        }

        RequireInSync(key);
        IReadOnlyList<uint> holders = dkls ? (await DklsKeyAsync(key, ct).ConfigureAwait(false)).Nodes : (await FrostKeyAsync(key, suite!, ct).ConfigureAwait(false)).Nodes;
        if (node < 1 || !holders.Contains((uint)node))
        {
            throw new ApiException(ProblemTypes.InvalidRequest,
                $"node {node} holds no share of key {key.Name}; its holders are nodes {string.Join(", ", holders.Order())}");
        }

        if (_frost.IsUntrusted((uint)node))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, $"node {node} is evicted (untrusted); a repair would hand it a share again");
        }

        // An ecdsa-dkls23 repair also renews the pairwise state of every holder with the repaired node (DklsCoordinator.Repair).
        if (dkls)
        {
            RotationPlan dklsPlan = await _dkls.PlanRepairAsync(key.Id, (uint)node, ct).ConfigureAwait(false);
            (string dklsRunId, Task<DklsKeyInfo> dklsRun) = StartRun(dklsPlan, session => _dkls.RotateAsync(dklsPlan, Lifetime, session));
            return await WaitOrPendingAsync(key, dklsRunId, dklsRun, ct).ConfigureAwait(false);
        }

        RotationPlan plan = await _frost.PlanRepairAsync(key.Id, (uint)node, ct).ConfigureAwait(false);
        (string runId, Task<FrostKeyInfo> run) = StartRun(plan);
        return await WaitOrPendingAsync(key, runId, run, ct).ConfigureAwait(false);
    }

    /// <summary>Waits for a run started under the server's lifetime until shortly before the request's deadline; then answers with the run to poll.</summary>
    private async Task<(KeyResponse? Key, OperationResponse? Pending)> WaitOrPendingAsync(KeyRecord key, string runId, Task run, CancellationToken ct)
    {
        TimeSpan patience = TimeSpan.FromSeconds(Math.Max(1, _config.RequestTimeoutSeconds * 0.8));
        try
        {
            await run.WaitAsync(patience, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException && !run.IsCompleted)
        {
            return (null, await OperationAsync(runId, CancellationToken.None).ConfigureAwait(false));
        }

        await run.ConfigureAwait(false); // rethrows the run's failure
        KeyRecord stored = await _store.Keys.GetAsync(key.Id, CancellationToken.None).ConfigureAwait(false) ?? throw new ApiException(ProblemTypes.UnknownKey, $"no key {key.Name}");
        return (ToResponse(stored), null);
    }

    /// <summary>Runs a plan to its end under the server's lifetime (a key creation waits for it whole).</summary>
    private async Task RunAsync(RotationPlan plan, CancellationToken ct)
    {
        Task run = plan.Scheme == DklsScheme.Name ? StartRun(plan, session => _dkls.RotateAsync(plan, Lifetime, session)).Run : StartRun(plan).Run;
        await run.WaitAsync(ct).ConfigureAwait(false);
    }

    private (string RunId, Task<FrostKeyInfo> Run) StartRun(RotationPlan plan) => StartRun(plan, session => _frost.RotateAsync(plan, Lifetime, session));

    /// <summary>Starts a run under the server's lifetime (never a request's), with a fresh run id.</summary>
    private static (string RunId, Task<TKey> Run) StartRun<TKey>(RotationPlan plan, Func<byte[], Task<TKey>> rotate)
    {
        byte[] session = Cluster.NewSessionId();
        Task<TKey> run = Task.Run(async () =>
        {
            try
            {
                return await rotate(session).ConfigureAwait(false);
            }
            catch (StorageException e) when (e.Kind == StorageErrorKind.Conflict && e.Message.Contains("unfinished rotation run", StringComparison.Ordinal))
            {
                throw new ApiException(ProblemTypes.RotationInProgress, $"key {plan.Name ?? plan.KeyId} is being rotated by another run; retry when it has finished");
            }
        }, CancellationToken.None);
        return (Convert.ToHexStringLower(session), run);
    }

    /// <summary>A rotation run as the API shows it (GET /v1/operations/{id}).</summary>
    public async Task<OperationResponse> OperationAsync(string runId, CancellationToken ct)
    {
        Storage.Rotation.RotationRun run = await _store.Rotations.GetAsync(runId, ct).ConfigureAwait(false)
            ?? throw new ApiException(ProblemTypes.NotFound, $"no operation {runId}");
        KeyRecord? key = run.State is Storage.Rotation.RotationState.Committed or Storage.Rotation.RotationState.Retired
            ? await _store.Keys.GetAsync(run.KeyId, ct).ConfigureAwait(false)
            : null;
        return new OperationResponse(run.RunId, run.Kind.ToString().ToLowerInvariant(), run.KeyId, run.State.ToString().ToLowerInvariant(), run.FromVersion, run.ToVersion,
            run.Error, run.CreatedAt, run.UpdatedAt, key is null ? null : ToResponse(key));
    }

    /// <summary>
    /// Finishes or aborts every unfinished rotation run this replica owns or whose owner's lease expired (at start and
    /// then periodically): Started runs are aborted, Prepared and Committed runs committed and retired. A run that
    /// cannot finish yet (a node is down) stays as it is and is tried again next time. Returns the runs it finished.
    /// </summary>
    public async Task<int> RecoverRunsAsync(CancellationToken ct)
    {
        int finished = 0;
        foreach (Storage.Rotation.RotationRun run in await _store.Rotations.ListUnfinishedAsync(ct).ConfigureAwait(false))
        {
            if (_frost.IsLive(run.RunId) || _dkls.IsLive(run.RunId) || !await _store.Rotations.TryLeaseAsync(run.RunId, _frost.Owner, _frost.RunLease, ct).ConfigureAwait(false))
            {
                continue; // another live replica owns it
            }

            try
            {
                if (run.Kind != Storage.Rotation.RotationKind.KeyGeneration && await _store.Keys.GetAsync(run.KeyId, ct).ConfigureAwait(false) is { } k
                    && FrostCiphersuite.TryGet(k.Scheme, out FrostCiphersuite? suite))
                {
                    _ = await FrostKeyAsync(k, suite, ct).ConfigureAwait(false);
                }

                RotationPlan plan = RotationPlan.FromBytes(run.Parameters);
                if (plan.Scheme == DklsScheme.Name)
                {
                    await _dkls.ResumeAsync(run.RunId, ct).ConfigureAwait(false);
                }
                else
                {
                    await _frost.ResumeAsync(run.RunId, ct).ConfigureAwait(false);
                }

                // A move off an evicted node finished here was audited by its retire, in the same transaction
                // (EvictionPlanner.MovedAudit); an aborted one is redone, and audited, by the background eviction pass.
                finished++;
            }
            catch (Exception e) when (e is NodeCallException or CulpritException or QuorumUnavailableException or StorageException)
            {
                // Left for the next pass; the run keeps the key locked meanwhile.
            }
#pragma warning disable CA1031 // one run that fails unexpectedly (a plan this build cannot read, written by a newer replica; a bug) must not stop the others' recovery
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
#pragma warning restore CA1031
            {
                Hosting.BackgroundLog.ItemFailed(Log, "run recovery", $"run {run.RunId} of key {run.KeyId}", e.GetType().Name, e);
            }
        }

        return finished;
    }

    /// <summary>Where the background passes (<see cref="RecoverRunsAsync"/>, <see cref="ContinueEvictionsAsync"/>) log a run or key they could not finish for an unexpected reason.</summary>
    public Microsoft.Extensions.Logging.ILogger Log { get; set; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>
    /// The ecdsa-secp256k1 key with this Ethereum address, read from the store on every call: only the address → id map
    /// is cached (an address is derived from the public key, which never changes), never the record, so a state
    /// change or deletion by another server replica sharing the store applies at once.
    /// </summary>
    public async Task<KeyRecord?> FindByEthereumAddressAsync(string address, CancellationToken ct)
    {
        if (!_byEthereumAddress.TryGetValue(address, out string? id))
        {
            await RefreshAddressesAsync(ct).ConfigureAwait(false);
            if (!_byEthereumAddress.TryGetValue(address, out id))
            {
                return null;
            }
        }

        KeyRecord? k = await _store.Keys.GetAsync(id, ct).ConfigureAwait(false);
        if (k is null)
        {
            _byEthereumAddress.TryRemove(address, out _);
        }

        return k;
    }

    public async Task<IReadOnlyList<string>> EthereumAccountsAsync(CancellationToken ct)
    {
        IReadOnlyList<KeyRecord> all = await RefreshAddressesAsync(ct).ConfigureAwait(false);
        return [.. all.Where(k => IsEthereumScheme(k.Scheme) && k.State == KeyState.Active).OrderBy(k => k.CreatedAt)
            .Select(k => EthereumAddress.FromPublicKey(k.PublicKey))];
    }

    /// <summary>Rebuilds the address → id map from the store (keys deleted elsewhere drop out).</summary>
    private async Task<IReadOnlyList<KeyRecord>> RefreshAddressesAsync(CancellationToken ct)
    {
        IReadOnlyList<KeyRecord> all = await _store.Keys.ListAsync(ct).ConfigureAwait(false);
        var current = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (KeyRecord k in all)
        {
            if (IsEthereumScheme(k.Scheme))
            {
                string address = EthereumAddress.FromPublicKey(k.PublicKey);
                _byEthereumAddress[address] = k.Id;
                current.Add(address);
            }
        }

        foreach (string stale in _byEthereumAddress.Keys.Where(a => !current.Contains(a)))
        {
            _byEthereumAddress.TryRemove(stale, out _);
        }

        return all;
    }

    /// <summary>
    /// Addresses by scheme: Ethereum (EIP-55) for ecdsa-secp256k1; Bitcoin P2TR (bech32m, mainnet) for schnorr-bip340
    /// and frost-taproot — both hold the BIP-341 internal key P, and the address is BIP-86's: the output key
    /// Q = P + int(hash_TapTweak(x(P)))·G, no script tree, which is the key their signatures verify under;
    /// Solana (base58) for ed25519 and frost-ed25519.
    /// </summary>
    public static KeyAddresses AddressesFor(string scheme, byte[] publicKey) => scheme switch
    {
        "ecdsa-secp256k1" or "hsm-ecdsa-secp256k1" or DklsScheme.Name => new KeyAddresses(Ethereum: EthereumAddress.FromPublicKey(publicKey)),
        "schnorr-bip340" or "frost-taproot" => new KeyAddresses(Bitcoin: TaprootAddress.FromOutputKey(TaprootAddress.Bip86OutputKey(publicKey).OutputKey)),
        "ed25519" or "frost-ed25519" or "hsm-ed25519" => new KeyAddresses(Solana: SolanaAddress.FromPublicKey(publicKey)),
        _ => new KeyAddresses(),
    };

    /// <summary>The BIP-86 output key (x-only hex) of a taproot scheme's internal key; null for every other scheme.</summary>
    public static string? OutputKeyHex(string scheme, byte[] publicKey) => scheme is "schnorr-bip340" or "frost-taproot"
        ? Convert.ToHexStringLower(TaprootAddress.Bip86OutputKey(publicKey).OutputKey)
        : null;

    public static KeyResponse ToResponse(KeyRecord k) => new(k.Id, k.Name, k.Scheme, Convert.ToHexStringLower(k.PublicKey), k.Threshold, k.Participants, k.Version,
        k.State.ToString().ToLowerInvariant(), k.Labels, AddressesFor(k.Scheme, k.PublicKey), k.CreatedAt, OutputKeyHex(k.Scheme, k.PublicKey));

    public void Dispose()
    {
        foreach (SoftwareSigningKey k in _loaded.Values)
        {
            k.Dispose();
        }

        _loaded.Clear();
        Hsm.Dispose();
    }
}

/// <summary>Strict hex for API inputs (an optional 0x prefix, an even number of hex digits).</summary>
public static class Hex
{
    public static byte[] Parse(string text, string field)
    {
        ArgumentNullException.ThrowIfNull(text);
        string hex = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text;
        if (hex.Length % 2 != 0 || !hex.All(Uri.IsHexDigit))
        {
            throw new ApiException(ProblemTypes.BadHex, $"{field} must be hex: an even number of digits 0-9, a-f, optionally prefixed by 0x");
        }

        return Convert.FromHexString(hex);
    }
}
