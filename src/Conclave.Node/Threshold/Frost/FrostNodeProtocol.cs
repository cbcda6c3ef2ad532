using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Node.Threshold.Sharing;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Frost;

/// <summary>
/// FROST plugged into the node's threshold engine: key import, nonce pools and signing (<see cref="FrostHandlers"/>), the
/// DKG rounds of key generation, refresh and reshare (<see cref="DkgHandlers"/>) and repair
/// (<see cref="RepairHandlers"/>), and what the node holds of a key for the server's consistency check
/// (<see cref="KeyStatusHandler"/>); a prepared run's result is a public key package.
/// </summary>
public sealed class FrostNodeProtocol : INodeProtocol
{
    private readonly FrostNodeState _state;
    private readonly DkgHandlers _dkg;
    private readonly RepairHandlers _repair;

    /// <param name="followUps">Protocols whose key generation starts with this DKG (DKLs23).</param>
    public FrostNodeProtocol(FrostNodeState state, ClusterManifest manifest, IReadOnlyList<IDkgFollowUp>? followUps = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        _state = state;
        _dkg = new DkgHandlers(state, manifest, followUps);
        _repair = new RepairHandlers(state, manifest, followUps);
        Handlers = [new FrostHandlers(state), _dkg, _repair, new KeyStatusHandler(state)];
    }

    public string Name => "FROST";

    public IReadOnlyList<IProtocolHandler> Handlers { get; }

    public bool Handles(string scheme) => FrostCiphersuite.TryGet(scheme, out _);

    public PreparedKey DescribePrepared(string scheme, byte[] result)
    {
        if (!FrostCiphersuite.TryGet(scheme, out FrostCiphersuite? suite))
        {
            throw new ProtocolException($"unknown FROST scheme {scheme}");
        }

        PublicKeyPackage package = PublicKeyPackage.FromBytes(suite, result);
        return new PreparedKey(package.VerificationKey, package.Threshold, package.ParticipantCount);
    }

    public void Evict(string keyId) => _state.Evict(keyId);

    public void Committed(string keyId, int previousVersion) => _state.Committed(keyId, previousVersion);

    public void DropRun(string runId)
    {
        _dkg.Drop(runId);
        _repair.Drop(runId);
    }
}
