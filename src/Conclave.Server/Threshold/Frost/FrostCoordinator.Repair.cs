using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;

namespace Conclave.Server.Coordinator;

public sealed partial class FrostCoordinator
{
    /// <summary>
    /// Rebuilds the share of <paramref name="lostNode"/> (for example after its store was deleted) with t healthy
    /// holders as helpers. The helpers and the lost node first announce per-run agreement keys (signed by their
    /// identity keys); the coordinator then relays only those announcements, δ pieces and σ values sealed between run
    /// keys; the lost node checks the result against its verifying share before storing it at the key's current version.
    /// </summary>
    public async Task RepairAsync(string keyId, uint lostNode, CancellationToken ct)
    {
        FrostKeyInfo key = Find(keyId) ?? throw new ArgumentException($"unknown FROST key {keyId}", nameof(keyId));
        if (!key.Nodes.Contains(lostNode))
        {
            throw new ArgumentException($"node {lostNode} holds no share of key {keyId}", nameof(lostNode));
        }

        IReadOnlyList<uint> up = await _cluster.AttestAsync(ct).ConfigureAwait(false);
        uint[] helpers = [.. key.Nodes.Where(n => n != lostNode && up.Contains(n)).Take(key.PublicKeyPackage.Threshold)];
        if (helpers.Length < key.PublicKeyPackage.Threshold)
        {
            throw new QuorumUnavailableException($"repair needs {key.PublicKeyPackage.Threshold} healthy holders of key {keyId}; {helpers.Length} are up");
        }

        byte[] session = Cluster.NewSessionId();
        TimeSpan timeout = _cluster.RoundTimeout * 5;
        var start = new PayloadWriter().String(keyId).U32(lostNode).U32((uint)helpers.Length);
        foreach (uint h in helpers)
        {
            start.U32(h);
        }

        byte[] agreementPayload = start.ToArray();
        byte[] startPayload = start.U32((uint)key.Version).ToArray();

        // Every participant announces its run agreement key (forward secrecy of the δ pieces and σ values).
        Dictionary<uint, IReadOnlyList<Envelope>> announced = await AllAsync([.. helpers, lostNode],
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.RepairAgreement, 1, [n], agreementPayload), [], timeout, ct)).ConfigureAwait(false);
        List<Envelope> runKeys = [.. announced.Values.SelectMany(m => m).Where(e => e.Kind == FrostMessages.RepairAgreementKey)];
        Dictionary<uint, IReadOnlyList<Envelope>> deltas = await AllAsync(helpers,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.RepairStart, 2, [n], startPayload), runKeys.Where(k => k.Sender != n), timeout, ct)).ConfigureAwait(false);
        List<Envelope> pieces = [.. deltas.Values.SelectMany(m => m)];
        Dictionary<uint, IReadOnlyList<Envelope>> sigmas = await AllAsync(helpers,
            n => _cluster.Node(n).StepAsync(_cluster.Request(session, FrostMessages.RepairSigma, 3, [n], []), pieces.Where(p => p.Recipients.Contains(n)), timeout, ct)).ConfigureAwait(false);

        var finish = new PayloadWriter().String(keyId).String(key.Suite.SchemeName).U32((uint)helpers.Length);
        foreach (uint h in helpers)
        {
            finish.U32(h);
        }

        byte[] finishPayload = finish.U32((uint)key.Version).Bytes(key.PublicKeyPackage.ToBytes()).ToArray();
        IReadOnlyList<Envelope> done = await _cluster.Node(lostNode).StepAsync(
            _cluster.Request(session, FrostMessages.RepairFinish, 4, [lostNode], finishPayload),
            sigmas.Values.SelectMany(m => m).Concat(runKeys.Where(k => helpers.Contains(k.Sender))), timeout, ct).ConfigureAwait(false);
        if (done.Count != 1 || done[0].Kind != FrostMessages.RepairDone)
        {
            throw new CulpritException([lostNode], $"node {lostNode} did not confirm the repaired share");
        }

        DropPool(keyId, lostNode);
    }
}
