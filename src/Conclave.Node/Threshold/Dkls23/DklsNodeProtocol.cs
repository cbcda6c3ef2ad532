using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Node.Threshold.Sharing;
using Conclave.Threshold.Dkls23;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// DKLs23 threshold ECDSA (scheme ecdsa-dkls23) plugged into the node's threshold engine: the pairwise setup that follows
/// the FROST DKG of a key-generation run (<see cref="DklsSetupHandlers"/>, registered with the FROST protocol as its
/// <see cref="IDkgFollowUp"/>) the three signing rounds (<see cref="DklsSignHandlers"/>, which also make pooled presignatures) and the one online
/// round that signs with a pooled presignature (<see cref="DklsPresignHandlers"/>); a prepared run's result is
/// the key's public encoding (<see cref="DklsPublicKey.ToBytes"/>).
/// </summary>
public sealed class DklsNodeProtocol : INodeProtocol
{
    private readonly DklsNodeState _state;
    private readonly DklsSetupHandlers _setup;

    public DklsNodeProtocol(DklsNodeState state, ClusterManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(state);
        _state = state;
        _setup = new DklsSetupHandlers(state);
        Handlers = [_setup, new DklsSignHandlers(state, manifest), new DklsPresignHandlers(state)];
    }

    public string Name => "DKLs23";

    /// <summary>The key-generation rounds that follow the FROST DKG (give it to the FROST protocol).</summary>
    public IDkgFollowUp DkgFollowUp => _setup;

    public IReadOnlyList<IProtocolHandler> Handlers { get; }

    public bool Handles(string scheme) => scheme == DklsScheme.Name;

    public PreparedKey DescribePrepared(string scheme, byte[] result)
    {
        if (scheme != DklsScheme.Name)
        {
            throw new ProtocolException($"{scheme} is not a DKLs23 scheme");
        }

        DklsPublicKey key = DklsPublicKey.FromBytes(result);
        return new PreparedKey(key.GroupPublicKey, key.Threshold, key.ParticipantCount);
    }

    public void Evict(string keyId) => _state.Evict(keyId);

    public void DropRun(string runId) => _setup.Drop(runId);
}
