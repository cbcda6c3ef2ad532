using Conclave.Crypto;
using Conclave.Crypto.Kdf;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Coordinator;
using Conclave.Server.Hosting;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Tests;

/// <summary>Keys whose share on one node is lost, for repair tests, without restarting a node process.</summary>
internal static class LostShareKeys
{
    /// <summary>
    /// A trusted-dealer key (dealt from <paramref name="random"/>: test data, from the run seed) imported (sealed to each
    /// node, as FrostCoordinator.ImportAsync does) on every holder but <paramref name="lost"/>.
    /// </summary>
    public static async Task<FrostKeyInfo> ImportWithoutAsync(LocalClusterProcesses c, FrostCoordinator coordinator, string keyId, FrostCiphersuite suite, uint lost, uint[] nodes, int threshold,
        IRandomSource random)
    {
        using DealerOutput dealt = TrustedDealer.Generate(suite, threshold, nodes.Length, random);
        byte[] session = Cluster.NewSessionId();
        var imports = new List<Task<IReadOnlyList<Envelope>>>();
        foreach (KeyPackage kp in dealt.KeyPackages)
        {
            uint index = FrostNodeIds.ToNode(kp.Identifier);
            uint nodeId = nodes[index - 1];
            if (nodeId != index)
            {
                throw new ArgumentException("the dealer numbers participants 1..n: give nodes 1..n", nameof(nodes));
            }

            if (nodeId == lost)
            {
                continue;
            }

            byte[] context = FrostMessages.ImportContext(session, nodeId, keyId);
            (SecretBuffer ephSecret, byte[] ephPublic) = X25519.GenerateKeyPair();
            byte[] sealedPackage;
            using (ephSecret)
            using (SecretBuffer wrap = X25519.DeriveKey(ephSecret.ReadOnlySpan, Convert.FromHexString(c.Coordinator.Manifest.Node(nodeId).AgreementKey), context))
            using (SecretBuffer plain = kp.Export())
            {
                sealedPackage = Conclave.Crypto.Aead.Envelope.Seal(wrap.ReadOnlySpan, plain.ReadOnlySpan, context);
            }

            byte[] payload = new PayloadWriter().String(keyId).String(suite.SchemeName).Bytes(ephPublic).Bytes(sealedPackage).ToArray();
            imports.Add(c.Coordinator.Node(nodeId).StepAsync(c.Coordinator.Request(session, FrostMessages.Import, 0, [nodeId], payload), [], TimeSpan.FromSeconds(30), CancellationToken.None));
        }

        foreach (IReadOnlyList<Envelope> reply in await Task.WhenAll(imports))
        {
            if (reply.Count != 1 || reply[0].Kind != FrostMessages.Imported)
            {
                throw new InvalidOperationException("a node did not import its share");
            }
        }

        var info = new FrostKeyInfo(keyId, suite, dealt.PublicKeyPackage);
        coordinator.Register(info);
        return info;
    }
}
