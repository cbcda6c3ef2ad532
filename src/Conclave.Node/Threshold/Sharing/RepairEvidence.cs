using System.Security.Cryptography;
using Conclave.Node.Protocol;

namespace Conclave.Node.Threshold.Sharing;

/// <summary>A helper's public statement in a repair run: key, version, lost node, helper set, the package it used and the sealed σ it sent.</summary>
public sealed record RepairContribution(string KeyId, int Version, uint Lost, uint[] Helpers, byte[] PackageHash, byte[] SealedSigmaHash);

/// <summary>The repaired node's public statement: key, version, the package it checked its share against, its proof of knowledge, and the σ it used.</summary>
public sealed record RepairConfirmation(string KeyId, int Version, byte[] PackageHash, byte[] Proof, IReadOnlyDictionary<uint, byte[]> SealedSigmaHashes);

/// <summary>
/// The public payloads of a repair run that go into its transcript (docs/ROTATION.md "Verifying a rotation"), each signed
/// by its node as an envelope: every helper's <see cref="RepairContribution"/> (frost.repair.contributed) and the repaired
/// node's <see cref="RepairConfirmation"/> (frost.repair.done). Hashes only: no δ, no σ, no share. The repaired node names
/// the SHA-256 of every sealed σ it combined, so a transcript binds each helper's contribution to the share rebuilt.
/// </summary>
public static class RepairEvidence
{
    /// <summary>SHA-256 of a public key package's encoding, as both statements name it.</summary>
    public static byte[] PackageHash(ReadOnlySpan<byte> publicKeyPackage) => SHA256.HashData(publicKeyPackage);

    public static byte[] WriteContribution(RepairContribution c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var w = new PayloadWriter().String(c.KeyId).U32((uint)c.Version).U32(c.Lost).U32((uint)c.Helpers.Length);
        foreach (uint h in c.Helpers)
        {
            w.U32(h);
        }

        return w.Bytes(c.PackageHash).Bytes(c.SealedSigmaHash).ToArray();
    }

    public static RepairContribution ReadContribution(ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        string keyId = r.String("keyId");
        int version = (int)r.U32("version");
        uint lost = r.U32("lost");
        uint[] helpers = r.NodeIds("helpers");
        byte[] package = r.Bytes("packageHash", 32).ToArray();
        byte[] sigma = r.Bytes("sealedSigmaHash", 32).ToArray();
        r.End();
        return new RepairContribution(keyId, version, lost, helpers, package, sigma);
    }

    public static byte[] WriteConfirmation(RepairConfirmation c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var w = new PayloadWriter().String(c.KeyId).U32((uint)c.Version).Bytes(c.PackageHash).Bytes(c.Proof).U32((uint)c.SealedSigmaHashes.Count);
        foreach ((uint helper, byte[] hash) in c.SealedSigmaHashes.OrderBy(kv => kv.Key))
        {
            w.U32(helper).Bytes(hash);
        }

        return w.ToArray();
    }

    public static RepairConfirmation ReadConfirmation(ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        string keyId = r.String("keyId");
        int version = (int)r.U32("version");
        byte[] package = r.Bytes("packageHash", 32).ToArray();
        byte[] proof = r.Bytes("proof", 128).ToArray();
        uint n = r.U32("sigmaCount");
        if (n > 255)
        {
            throw new ProtocolException("a repair confirmation names more than 255 helpers");
        }

        var sigmas = new Dictionary<uint, byte[]>();
        for (uint i = 0; i < n; i++)
        {
            uint helper = r.U32("helper");
            if (!sigmas.TryAdd(helper, r.Bytes("sealedSigmaHash", 32).ToArray()))
            {
                throw new ProtocolException($"a repair confirmation names helper {helper} twice");
            }
        }

        r.End();
        return new RepairConfirmation(keyId, version, package, proof, sigmas);
    }
}
