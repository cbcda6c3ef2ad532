using Conclave.Node.Threshold.Engine;
using Conclave.Server.Threshold.Engine;
using Conclave.Threshold.Dkls23;

namespace Conclave.Server.Threshold.Dkls23;

/// <summary>An ecdsa-dkls23 key as the coordinator knows it: public data only (node n holds the share of identifier n).</summary>
public sealed record DklsKeyInfo(string KeyId, DklsPublicKey PublicKey, int Version = 1) : IThresholdKey
{
    public IReadOnlyList<uint> Nodes { get; } = [.. PublicKey.Participants.Select(FrostNodeIds.ToNode)];

    public int Threshold => PublicKey.Threshold;
}

/// <summary>
/// A verified ECDSA signature from the cluster: 64-byte r ‖ s (low s), the recovery id, the key version that signed and
/// the (child) public key it verifies under, 33 bytes compressed.
/// </summary>
public sealed record DklsSignatureResult(byte[] Signature, int RecoveryId, int KeyVersion, byte[] PublicKey);
