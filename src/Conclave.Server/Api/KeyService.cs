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
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;
using Conclave.Wallets;
using Conclave.Wallets.Hd;

namespace Conclave.Server.Api;

/// <summary>
/// Keys behind the API. Single-key schemes (ecdsa-secp256k1, schnorr-bip340, ed25519) are generated here with the
/// health-checked generator and kept in the server store as envelope-encrypted material (private key ‖ 32-byte chain
/// code). FROST schemes (frost-ed25519, frost-secp256k1, frost-taproot) keep one share per signer node; the server
/// store holds only the public key package (as the key's material), re-registered with the coordinator at start.
/// </summary>
public sealed partial class KeyService : IDisposable
{
    private const int ChainCodeSizeInBytes = 32;
    private readonly IConclaveStore _store;
    private readonly FrostCoordinator _frost;
    private readonly Cluster _cluster;
    private readonly ServerConfig _config;
    private readonly ConcurrentDictionary<(string Id, int Version), SoftwareSigningKey> _loaded = new();
    private readonly ConcurrentDictionary<string, KeyRecord> _byEthereumAddress = new(StringComparer.OrdinalIgnoreCase);

    public KeyService(IConclaveStore store, FrostCoordinator frost, Cluster cluster, ServerConfig config)
    {
        _store = store;
        _frost = frost;
        _cluster = cluster;
        _config = config;
    }

    public IConclaveStore Store => _store;

    public FrostCoordinator Frost => _frost;

    public static IReadOnlyList<string> Schemes { get; } =
        [.. SignatureSchemes.SingleKey.Select(s => s.Name), .. FrostCiphersuite.All.Select(s => s.SchemeName), .. PostQuantumSchemes.All.Select(s => s.Name)];

    /// <summary>Schemes whose private key the server holds in its encrypted store: the single-key and the post-quantum ones.</summary>
    private static bool TryGetSoftwareScheme(string name, out SoftwareSignatureScheme? scheme)
        => SignatureSchemes.TryGet(name, out scheme) || PostQuantumSchemes.TryGet(name, out scheme);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex NamePattern();

    /// <summary>Registers every stored FROST key with the coordinator (at start).</summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        IReadOnlyList<KeyRecord> all;
        try
        {
            all = await _store.Keys.ListAsync(ct).ConfigureAwait(false);
        }
        catch (StorageException e) when (e.Kind == StorageErrorKind.IntegrityCheckFailed)
        {
            // A tampered key row (issue 14 item 7) must not keep the server down: nothing is preloaded, every other key
            // is registered on first use (FrostKeyAsync), and the tampered one is refused wherever it is read.
            return;
        }

        foreach (KeyRecord k in all)
        {
            if (FrostCiphersuite.TryGet(k.Scheme, out FrostCiphersuite? suite))
            {
                _frost.Register(new FrostKeyInfo(k.Id, suite, await ReadPackageAsync(k, suite, ct).ConfigureAwait(false), k.Version));
            }
        }
    }

    public async Task<KeyRecord> CreateAsync(CreateKeyRequest req, CancellationToken ct)
    {
        if (req.Name is null || !NamePattern().IsMatch(req.Name))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "name is required: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit");
        }

        if (string.IsNullOrEmpty(req.Scheme))
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "scheme is required");
        }

        if (await _store.Keys.GetByNameAsync(req.Name, ct).ConfigureAwait(false) is not null)
        {
            throw new ApiException(ProblemTypes.KeyExists, $"a key named {req.Name} already exists");
        }

        string id = "k" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        if (TryGetSoftwareScheme(req.Scheme, out SoftwareSignatureScheme? single))
        {
            if (req.Threshold is not (null or 1) || req.Participants is not (null or 1))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, $"{req.Scheme} is a single-key scheme: threshold and participants must be 1 or absent");
            }

            return await CreateSingleAsync(id, req, single!, ct).ConfigureAwait(false);
        }

        if (FrostCiphersuite.TryGet(req.Scheme, out FrostCiphersuite? suite))
        {
            int participants = req.Participants ?? _cluster.NodeIds.Count;
            int threshold = req.Threshold ?? Math.Min(_config.Threshold, participants);
            if (participants < 2 || participants > _cluster.NodeIds.Count)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, $"participants must be between 2 and the number of signer nodes ({_cluster.NodeIds.Count})");
            }

            if (threshold < 2 || threshold > participants)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, $"threshold must be between 2 and participants ({participants})");
            }

            PublicKeyPackage package = await CreateFrostKeyAsync(id, suite, threshold, participants, ct).ConfigureAwait(false);
            byte[] encoded = package.ToBytes();
            using SecretBuffer material = SecretBuffer.CopyFrom(encoded);
            return await _store.Keys.CreateAsync(new NewKey(id, req.Name, suite.SchemeName, package.VerificationKey, threshold, participants, req.Labels), material, ct).ConfigureAwait(false);
        }

        throw new ApiException(ProblemTypes.UnknownScheme, $"unknown scheme; supported: {string.Join(", ", Schemes)}");
    }

    /// <summary>
    /// Makes a new FROST key by distributed key generation among nodes 1..participants (FrostCoordinator.CreateKeyAsync):
    /// the group secret never exists anywhere; the server keeps only the public key package.
    /// </summary>
    private async Task<PublicKeyPackage> CreateFrostKeyAsync(string keyId, FrostCiphersuite suite, int threshold, int participants, CancellationToken ct)
    {
        uint[] nodes = [.. _cluster.NodeIds.Order().Take(participants)];
        FrostKeyInfo info = await _frost.CreateKeyAsync(keyId, suite, threshold, nodes, ct).ConfigureAwait(false);
        return info.PublicKeyPackage;
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

    /// <summary>The key a route names: the record the audit middleware already read for this request, else the store's.</summary>
    public Task<KeyRecord> GetAsync(Microsoft.AspNetCore.Http.HttpContext ctx, string name, CancellationToken ct) =>
        AuditTrail.Key(ctx) is { } k && k.Name == name ? Task.FromResult(k) : GetAsync(name, ct);

    public async Task<KeyRecord> GetAsync(string name, CancellationToken ct) =>
        await _store.Keys.GetByNameAsync(name, ct).ConfigureAwait(false) ?? throw new ApiException(ProblemTypes.UnknownKey, $"no key named {name}");

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

        if (TryGetSoftwareScheme(key.Scheme, out SoftwareSignatureScheme? single))
        {
            byte[] input = SignInput(single!.InputKind == SignInputKind.Digest32, key.Scheme, req);
            if (path is not null)
            {
                (byte[] signature, int? recoveryId, byte[] childKey) = await SignWithChildAsync(key, single, path, input, ct).ConfigureAwait(false);
                return new SignResponse(Convert.ToHexStringLower(signature), recoveryId, Convert.ToHexStringLower(childKey), key.Version, normalized);
            }

            SoftwareSigningKey sk = await LoadSigningKeyAsync(key, single, ct).ConfigureAwait(false);
            SignatureResult r = sk.Sign(input);
            return new SignResponse(Convert.ToHexStringLower(r.Signature), r.RecoveryId, Convert.ToHexStringLower(key.PublicKey), key.Version, normalized);
        }

        if (FrostCiphersuite.TryGet(key.Scheme, out FrostCiphersuite? suite))
        {
            byte[] message = SignInput(false, key.Scheme, req);
            _ = await FrostKeyAsync(key, suite!, ct).ConfigureAwait(false);
            FrostSignature sig;
            try
            {
                sig = await _frost.SignAsync(key.Id, message, path ?? [], ct).ConfigureAwait(false);
            }
            catch (CulpritException e)
            {
                // The misbehaving node is named in the audit log as well as in the problem returned.
                await _store.Audit.AppendAsync(new Conclave.Storage.Audit.AuditEntryInput("coordinator", "sign.culprit", key.Id, null, "deny",
                    "culprit node " + string.Join(",", e.Culprits)), CancellationToken.None).ConfigureAwait(false);
                throw;
            }

            // The version and key that actually signed (a refresh may have completed since the request began).
            return new SignResponse(Convert.ToHexStringLower(sig.Signature), null, Convert.ToHexStringLower(sig.VerificationKey), sig.KeyVersion, normalized);
        }

        throw new ApiException(ProblemTypes.Unsupported, $"scheme {key.Scheme} cannot sign on this server");
    }

    /// <summary>
    /// Signs with the non-hardened child of a server-held key (the child POST /derive reports): secp256k1 keys through
    /// Conclave.Wallets (k + Σ IL; schnorr-bip340 from its even-Y parent), ed25519 through
    /// Ed25519HdDerivation.SignWithChild. The child private key exists only in a zeroed buffer for this one signature.
    /// </summary>
    private async Task<(byte[] Signature, int? RecoveryId, byte[] ChildKey)> SignWithChildAsync(KeyRecord key, SoftwareSignatureScheme scheme, IReadOnlyList<uint> path, byte[] input, CancellationToken ct)
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

        SoftwareSigningKey sk = await LoadSigningKeyAsync(key, SignatureSchemes.EcdsaSecp256k1, ct).ConfigureAwait(false);
        return sk.Sign(digest);
    }

    private static byte[] SignInput(bool digest, string scheme, SignRequest req)
    {
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

    private async Task<SoftwareSigningKey> LoadSigningKeyAsync(KeyRecord key, SoftwareSignatureScheme scheme, CancellationToken ct)
    {
        if (_loaded.TryGetValue((key.Id, key.Version), out SoftwareSigningKey? sk))
        {
            return sk;
        }

        using SecretBuffer material = await _store.Keys.OpenMaterialAsync(key.Id, key.Version, ct).ConfigureAwait(false);
        SoftwareSigningKey loaded = scheme.ImportPrivateKey(material.ReadOnlySpan[..scheme.PrivateKeySizeInBytes]);
        if (!_loaded.TryAdd((key.Id, key.Version), loaded))
        {
            loaded.Dispose();
        }

        return _loaded[(key.Id, key.Version)];
    }

    public async Task<DeriveResponse> DeriveAsync(KeyRecord key, string? path, CancellationToken ct)
    {
        if (path is null)
        {
            throw new ApiException(ProblemTypes.InvalidRequest, "path is required, for example \"0/1\"");
        }

        IReadOnlyList<uint> indexes = ParsePath(path);
        string normalized = string.Join('/', indexes.Select(i => i.ToString(CultureInfo.InvariantCulture)));
        if (FrostCiphersuite.TryGet(key.Scheme, out FrostCiphersuite? suite))
        {
            // Threshold keys derive with the FROST library's HD scheme (docs/FROST.md "HD"), the one the signers apply
            // to their shares when a sign request names a path: BIP-32 CKDpub for frost-secp256k1 and frost-taproot
            // (the child normalised to even Y, its x-only key the P2TR output key), the additive tweak for frost-ed25519.
            PublicKeyPackage package = (await FrostKeyAsync(key, suite, ct).ConfigureAwait(false)).PublicKeyPackage;
            if (indexes.Count == 0)
            {
                return new DeriveResponse(normalized, Convert.ToHexStringLower(key.PublicKey), AddressesFor(key.Scheme, key.PublicKey));
            }

            byte[] childKey = HdDerivation.DerivePath(package, indexes).VerificationKey;
            return new DeriveResponse(normalized, Convert.ToHexStringLower(childKey), AddressesFor(key.Scheme, childKey));
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
                return new DeriveResponse(normalized, Convert.ToHexStringLower(xonly), AddressesFor(key.Scheme, xonly));
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
    /// threshold) of a FROST key over the cluster; the server stores the new public key package as a new key version.
    /// </summary>
    public async Task<KeyResponse> RefreshOrReshareAsync(KeyRecord key, string operation, int? threshold, int? participants, CancellationToken ct)
    {
        if (!FrostCiphersuite.TryGet(key.Scheme, out FrostCiphersuite? suite))
        {
            throw new ApiException(ProblemTypes.NotThreshold, $"{operation} applies to threshold keys; {key.Name} is a single {key.Scheme} key");
        }

        _ = await FrostKeyAsync(key, suite, ct).ConfigureAwait(false);

        FrostKeyInfo next;
        if (operation == "refresh")
        {
            next = await _frost.RefreshAsync(key.Id, ct).ConfigureAwait(false);
        }
        else
        {
            int n = participants ?? key.Participants;
            int t = threshold ?? key.Threshold;
            if (n < 2 || n > _cluster.NodeIds.Count || t < 2 || t > n)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, $"reshare needs 2 ≤ threshold ≤ participants ≤ {_cluster.NodeIds.Count} (the signer nodes)");
            }

            next = await _frost.ReshareAsync(key.Id, t, [.. _cluster.NodeIds.Order().Take(n)], ct).ConfigureAwait(false);
        }

        using SecretBuffer material = SecretBuffer.CopyFrom(next.PublicKeyPackage.ToBytes());
        KeyRecord stored = await _store.Keys.RotateAsync(key.Id, key.Version, next.PublicKeyPackage.VerificationKey, material, ct).ConfigureAwait(false);
        return ToResponse(stored) with { Threshold = next.PublicKeyPackage.Threshold, Participants = next.PublicKeyPackage.ParticipantCount };
    }

    /// <summary>Finds the active ecdsa-secp256k1 key with this Ethereum address.</summary>
    public async Task<KeyRecord?> FindByEthereumAddressAsync(string address, CancellationToken ct)
    {
        if (_byEthereumAddress.TryGetValue(address, out KeyRecord? k))
        {
            return k;
        }

        await RefreshAddressesAsync(ct).ConfigureAwait(false);
        return _byEthereumAddress.TryGetValue(address, out k) ? k : null;
    }

    public async Task<IReadOnlyList<string>> EthereumAccountsAsync(CancellationToken ct)
    {
        await RefreshAddressesAsync(ct).ConfigureAwait(false);
        return [.. _byEthereumAddress.Where(kv => kv.Value.State == KeyState.Active).OrderBy(kv => kv.Value.CreatedAt).Select(kv => kv.Key)];
    }

    private async Task RefreshAddressesAsync(CancellationToken ct)
    {
        foreach (KeyRecord k in await _store.Keys.ListAsync(ct).ConfigureAwait(false))
        {
            if (k.Scheme == SignatureSchemes.EcdsaSecp256k1.Name)
            {
                _byEthereumAddress[EthereumAddress.FromPublicKey(k.PublicKey)] = k;
            }
        }
    }

    /// <summary>
    /// Addresses by scheme: Ethereum (EIP-55) for ecdsa-secp256k1; Bitcoin P2TR (bech32m, mainnet) for schnorr-bip340
    /// (BIP-86 tweak of the key, no script tree) and frost-taproot (its x-only key is already the output key);
    /// Solana (base58) for ed25519 and frost-ed25519.
    /// </summary>
    public static KeyAddresses AddressesFor(string scheme, byte[] publicKey) => scheme switch
    {
        "ecdsa-secp256k1" => new KeyAddresses(Ethereum: EthereumAddress.FromPublicKey(publicKey)),
        "schnorr-bip340" => new KeyAddresses(Bitcoin: TaprootAddress.FromOutputKey(TaprootAddress.Bip86OutputKey(publicKey).OutputKey)),
        "frost-taproot" => new KeyAddresses(Bitcoin: TaprootAddress.FromOutputKey(publicKey)),
        "ed25519" or "frost-ed25519" => new KeyAddresses(Solana: SolanaAddress.FromPublicKey(publicKey)),
        _ => new KeyAddresses(),
    };

    public static KeyResponse ToResponse(KeyRecord k) => new(k.Id, k.Name, k.Scheme, Convert.ToHexStringLower(k.PublicKey), k.Threshold, k.Participants, k.Version,
        k.State.ToString().ToLowerInvariant(), k.Labels, AddressesFor(k.Scheme, k.PublicKey), k.CreatedAt);

    public void Dispose()
    {
        foreach (SoftwareSigningKey k in _loaded.Values)
        {
            k.Dispose();
        }

        _loaded.Clear();
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
