using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using Conclave.Crypto;
using Conclave.Crypto.Memory;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Coordinator;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Threshold;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Api;

/// <summary>
/// Checks the server store's threshold keys against what the signer nodes hold, and re-synchronises a key row from the
/// nodes' committed version when the server store is behind them (a server backup restored after the nodes moved on:
/// issue 20 bug 4; docs/OPERATIONS.md "Restoring the server").
/// <para>
/// A consistent cluster is one where, for every active threshold key, the version the server store names is the newest
/// version any holder has committed, and every holder of that version holds the same public key package as the store.
/// When the nodes are ahead, the store takes their version only if every participant of the nodes' package answered
/// with exactly that version and package (signed by the node, as every reply), the package verifies (its verifying
/// shares lie on one polynomial of degree t−1 through the group key, RFC 9591 section 5) and it has the same group key
/// and chain code as the store's. Anything else is reported, per key, with what each node said, and never repaired.
/// </para>
/// </summary>
public sealed class KeyConsistency(IConclaveStore store, Cluster cluster)
{
    private readonly ConcurrentDictionary<string, KeySyncReport> _last = new(StringComparer.Ordinal);
    private volatile bool _firstPassDone;

    /// <summary>True once every key was checked once since the server started (readiness waits for it).</summary>
    public bool FirstPassDone => _firstPassDone;

    /// <summary>The last report of a key whose signing and rotation must be refused (see <see cref="KeySyncReport.Blocking"/>).</summary>
    public KeySyncReport? BlockingReport(string keyId) => _last.TryGetValue(keyId, out KeySyncReport? r) && r.Blocking ? r : null;

    /// <summary>Every key whose last report blocks it, by id.</summary>
    public IReadOnlyList<KeySyncReport> Blocking => [.. _last.Values.Where(r => r.Blocking).OrderBy(r => r.KeyId, StringComparer.Ordinal)];

    /// <summary>Checks (and with <paramref name="repair"/> re-synchronises) every active threshold key of the store.</summary>
    public async Task<IReadOnlyList<KeySyncReport>> CheckAllAsync(bool repair, CancellationToken ct, Func<KeyRecord, bool>? which = null)
    {
        // Keys are checked 16 at a time: a node that does not answer costs its connect timeout once per batch, not per key.
        KeyRecord[] keys = [.. (await store.Keys.ListAsync(ct).ConfigureAwait(false)).Where(k => which is null || which(k))];
        var reports = new KeySyncReport?[keys.Length];
        await Parallel.ForAsync(0, keys.Length, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct },
            async (i, token) => reports[i] = await CheckAsync(keys[i], repair, token).ConfigureAwait(false)).ConfigureAwait(false);
        _firstPassDone = true;
        return [.. reports.OfType<KeySyncReport>()];
    }

    /// <summary>True when the last report of this key says anything but consistent (or the key was never checked).</summary>
    public bool NeedsCheck(KeyRecord key) => !_last.TryGetValue(key.Id, out KeySyncReport? r) || r.State is not (KeySyncStates.Consistent or KeySyncStates.Resynchronised);

    /// <summary>One key: null for a key that is not an active threshold key (nothing on the nodes to compare).</summary>
    public async Task<KeySyncReport?> CheckAsync(KeyRecord key, bool repair, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.State != KeyState.Active || !FrostCiphersuite.TryGet(key.Scheme, out FrostCiphersuite? suite))
        {
            _last.TryRemove(key.Id, out _);
            return null;
        }

        KeySyncReport report = await DecideAsync(key, suite, repair, ct).ConfigureAwait(false);
        _last[key.Id] = report;
        return report;
    }

    private async Task<KeySyncReport> DecideAsync(KeyRecord key, FrostCiphersuite suite, bool repair, CancellationToken ct)
    {
        KeySyncReport Report(string state, string? problem, IReadOnlyList<KeySyncNode> nodes, bool blocking, int? nodeVersion = null) =>
            new(key.Id, key.Name, state, key.Version, nodeVersion, problem, nodes, blocking);

        if (await store.Rotations.GetActiveAsync(key.Id, ct).ConfigureAwait(false) is { } run)
        {
            // Recovery (KeyService.RecoverRunsAsync) finishes or aborts the run first; the key is checked afterwards.
            return Report(KeySyncStates.Unchecked, $"key {key.Name}: rotation run {run.RunId} is unfinished; it is checked once recovery has finished the run", [], false);
        }

        PublicKeyPackage stored;
        byte[] storedBytes;
        using (SecretBuffer material = await store.Keys.OpenMaterialAsync(key.Id, key.Version, ct).ConfigureAwait(false))
        {
            storedBytes = material.ReadOnlySpan.ToArray();
            stored = PublicKeyPackage.FromBytes(suite, storedBytes);
        }

        NodeAnswer[] answers = await Task.WhenAll(cluster.NodeIds.Order().Select(id => AskAsync(id, key.Id, ct))).ConfigureAwait(false);
        KeySyncNode[] nodes = [.. answers.Select(a => new KeySyncNode(a.Node, a.State, a.Version, a.Detail))];
        NodeAnswer[] active = [.. answers.Where(a => a.State == "active" && a.Package.Length > 0)];
        uint[] unreachable = [.. answers.Where(a => a.State == "unreachable").Select(a => a.Node)];
        string unreachableText = unreachable.Length == 0 ? "" : $"; node(s) {List(unreachable)} did not answer";
        int newest = active.Length == 0 ? 0 : active.Max(a => a.Version);

        if (active.Length == 0)
        {
            return unreachable.Length > 0
                ? Report(KeySyncStates.Unchecked, $"key {key.Name}: no reachable node holds it{unreachableText}", nodes, false)
                : Report(KeySyncStates.OutOfSync, $"key {key.Name}: no signer node holds it (server store at version {key.Version}); the nodes' stores predate the key or it was destroyed on them: restore the node backups taken with this server backup", nodes, true);
        }

        if (newest == key.Version)
        {
            uint[] different = [.. active.Where(a => a.Version == newest && !a.Package.AsSpan().SequenceEqual(storedBytes)).Select(a => a.Node)];
            return different.Length == 0
                ? Report(KeySyncStates.Consistent, null, nodes, false, newest)
                : Report(KeySyncStates.OutOfSync, $"key {key.Name}: node(s) {List(different)} hold version {newest} with a public key package other than the server store's; the store is not changed", nodes, true, newest);
        }

        if (newest < key.Version)
        {
            return unreachable.Length > 0
                ? Report(KeySyncStates.Unchecked, $"key {key.Name}: the server store is at version {key.Version}, the reachable nodes at most at version {newest}{unreachableText}", nodes, false, newest)
                : Report(KeySyncStates.OutOfSync, $"key {key.Name}: the server store is at version {key.Version} but the nodes hold at most version {newest}: the nodes were restored from older backups than the server; restore the server backup taken with them", nodes, true, newest);
        }

        // The nodes are ahead of the store: take their version only if every holder agrees and the package verifies.
        NodeAnswer[] atNewest = [.. active.Where(a => a.Version == newest)];
        string Behind(string what) => $"key {key.Name}: the server store is at version {key.Version} and node(s) {List(atNewest.Select(a => a.Node))} at version {newest}; {what}";
        if (atNewest.Select(a => Convert.ToHexString(a.Package)).Distinct(StringComparer.Ordinal).Count() > 1)
        {
            return Report(KeySyncStates.OutOfSync, Behind("they report different public key packages for it, so the store is not re-synchronised"), nodes, true, newest);
        }

        PublicKeyPackage theirs;
        try
        {
            theirs = PublicKeyPackage.FromBytes(suite, atNewest[0].Package);
        }
        catch (Exception e) when (e is ThresholdProtocolException or CryptoFormatException or ArgumentException)
        {
            return Report(KeySyncStates.OutOfSync, Behind($"their public key package does not verify ({e.Message}), so the store is not re-synchronised"), nodes, true, newest);
        }

        if (!theirs.VerificationKey.AsSpan().SequenceEqual(key.PublicKey))
        {
            return Report(KeySyncStates.OutOfSync, Behind("their package has another group public key than the store's, so the store is not re-synchronised"), nodes, true, newest);
        }

        if (!theirs.ChainCode.SequenceEqual(stored.ChainCode))
        {
            return Report(KeySyncStates.OutOfSync, Behind("their package has another chain code than the store's, so the store is not re-synchronised"), nodes, true, newest);
        }

        uint[] holders = [.. theirs.Participants.Select(FrostNodeIds.ToNode).Order()];
        uint[] extra = [.. atNewest.Select(a => a.Node).Where(n => !holders.Contains(n))];
        if (extra.Length > 0)
        {
            return Report(KeySyncStates.OutOfSync, Behind($"node(s) {List(extra)} hold that version but are not among its participants ({List(holders)}), so the store is not re-synchronised"), nodes, true, newest);
        }

        uint[] missing = [.. holders.Where(h => !atNewest.Any(a => a.Node == h))];
        if (missing.Length > 0)
        {
            uint[] silent = [.. missing.Where(unreachable.Contains)];
            return silent.Length == missing.Length
                ? Report(KeySyncStates.Unchecked, Behind($"node(s) {List(silent)} did not answer, and every holder must agree before the store is re-synchronised from the nodes"), nodes, true, newest)
                : Report(KeySyncStates.OutOfSync, Behind($"node(s) {List(missing.Where(m => !unreachable.Contains(m)))} are participants of that version but do not hold it, so the store is not re-synchronised (repair them first)"), nodes, true, newest);
        }

        if (!repair)
        {
            return Report(KeySyncStates.OutOfSync, Behind("every holder agrees, so the store can be re-synchronised from them"), nodes, true, newest);
        }

        // Audited before it takes effect (safety rule 6); the store checks the key row's version and reseals its MAC.
        await store.Audit.AppendAsync(new AuditEntryInput("coordinator", "key.resync", key.Id, SHA256.HashData(atNewest[0].Package), "allow",
            $"store version {key.Version} -> {newest} from the committed public key package of nodes {List(holders)}"), ct).ConfigureAwait(false);
        using (SecretBuffer material = SecretBuffer.CopyFrom(atNewest[0].Package))
        {
            _ = await store.Keys.AddPendingVersionAsync(key.Id, key.Version, newest, theirs.VerificationKey, material, ct).ConfigureAwait(false);
        }

        _ = await store.Keys.CommitPendingVersionAsync(new KeyRotation(key.Id, key.Version, newest, theirs.VerificationKey, theirs.Threshold, theirs.ParticipantCount)
        {
            Holders = [.. theirs.Participants.Select(p => FrostNodeIds.ToNode(p))],
        }, ct).ConfigureAwait(false);
        return Report(KeySyncStates.Resynchronised, null, nodes, false, newest);
    }

    private async Task<NodeAnswer> AskAsync(uint node, string keyId, CancellationToken ct)
    {
        try
        {
            Envelope req = cluster.Request(Cluster.NewSessionId(), KeyStatusHandler.RequestKind, 0, [node], new PayloadWriter().String(keyId).ToArray());
            IReadOnlyList<Envelope> reply = await cluster.Node(node).StepAsync(req, [], cluster.RoundTimeout, ct).ConfigureAwait(false);
            if (reply.Count != 1 || reply[0].Kind != KeyStatusHandler.ReplyKind)
            {
                return new NodeAnswer(node, "invalid", 0, [], "answered without a key status");
            }

            var r = new PayloadReader(reply[0].Payload.Span);
            if (r.String("keyId") != keyId)
            {
                return new NodeAnswer(node, "invalid", 0, [], "answered for another key");
            }

            int version = (int)Math.Min(r.U32("version"), int.MaxValue);
            string state = r.String("state").ToLowerInvariant();
            byte[] package = r.Bytes("package").ToArray();
            r.End();
            return new NodeAnswer(node, state, version, package, null);
        }
        catch (NodeCallException e) when (e.IsTransient)
        {
            return new NodeAnswer(node, "unreachable", 0, [], null);
        }
        catch (NodeCallException e)
        {
            return new NodeAnswer(node, "refused", 0, [], e.Message);
        }
        catch (ProtocolException e)
        {
            return new NodeAnswer(node, "invalid", 0, [], e.Message);
        }
    }

    private static string List(IEnumerable<uint> ids) => string.Join(",", ids.Select(i => i.ToString(CultureInfo.InvariantCulture)));

    private sealed record NodeAnswer(uint Node, string State, int Version, byte[] Package, string? Detail);
}

/// <summary>The states of a <see cref="KeySyncReport"/>.</summary>
public static class KeySyncStates
{
    /// <summary>The store names the nodes' newest committed version, with the same public key package.</summary>
    public const string Consistent = "consistent";

    /// <summary>The store was behind the nodes and took their committed version (audited as <c>key.resync</c>).</summary>
    public const string Resynchronised = "resynchronised";

    /// <summary>Store and nodes disagree in a way the server does not repair; the problem says how.</summary>
    public const string OutOfSync = "out-of-sync";

    /// <summary>Not decided yet (a node did not answer, or a rotation run is unfinished); checked again.</summary>
    public const string Unchecked = "unchecked";
}

/// <summary>What the consistency check found for one key, and what each node said.</summary>
/// <param name="Blocking">True when signing and rotating the key must be refused with the problem: the store and the nodes
/// disagree (out of sync), or the nodes are ahead of the store and not every holder answered yet.</param>
public sealed record KeySyncReport(string KeyId, string Name, string State, int StoreVersion, int? NodeVersion, string? Problem,
    IReadOnlyList<KeySyncNode> Nodes, bool Blocking);

/// <summary>One node's answer: its state for the key (active, pending, destroyed, absent, unreachable, refused, invalid) and version.</summary>
public sealed record KeySyncNode(uint Node, string State, int Version, string? Detail);
