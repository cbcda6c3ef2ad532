using System.Text.Json;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage.Rotation;

namespace Conclave.Server.Coordinator;

/// <summary>
/// Everything the coordinator needs to finish or abort a rotation run after a crash, recorded with the run before its
/// first message leaves (the run's Parameters): kind, scheme, threshold, who deals, who receives, who held the old
/// version, for a new key its name and labels, and for the reshare that moves a key off an evicted node that node
/// (<see cref="Evicting"/>). Public data only. Format 1; format 2 (written only for an eviction's move) adds the
/// evicted node.
/// </summary>
public sealed record RotationPlan(
    RotationKind Kind,
    string KeyId,
    string Scheme,
    int Threshold,
    IReadOnlyList<uint> Dealers,
    IReadOnlyList<uint> Receivers,
    IReadOnlyList<uint> OldHolders,
    int FromVersion,
    string? Name = null,
    IReadOnlyDictionary<string, string>? Labels = null)
{
    /// <summary>
    /// For the reshare that moves the key away from an evicted node (<see cref="Conclave.Server.Threshold.Engine.EvictionPlanner.PlanAsync"/>):
    /// that node, which takes no part in the run. Whoever finishes the run (the eviction's own pass, or run recovery
    /// after a crash) audits the move from it. Null for every other run.
    /// </summary>
    public uint? Evicting { get; init; }

    /// <summary>The version the run makes: 1 for a new key, the same version for a repair (the lost share is rebuilt as it was), else the next.</summary>
    public int ToVersion => Kind switch
    {
        RotationKind.KeyGeneration => 1,
        RotationKind.Repair => FromVersion,
        _ => FromVersion + 1,
    };

    /// <summary>Every node the run touches: dealers, receivers and old holders.</summary>
    public IReadOnlyList<uint> Everyone => [.. Dealers.Union(Receivers).Union(OldHolders).Order()];

    internal DkgRunKind DkgKind => Kind switch
    {
        RotationKind.KeyGeneration => DkgRunKind.KeyGeneration,
        RotationKind.Refresh => DkgRunKind.Refresh,
        RotationKind.Reshare => DkgRunKind.Reshare,
        _ => throw new InvalidOperationException("repair runs have no DKG"),
    };

    public byte[] ToBytes()
    {
        var w = new PayloadWriter().U32(Evicting is null ? 1u : 2u).U32((uint)Kind).String(KeyId).String(Scheme).U32((uint)Threshold);
        Ids(w, Dealers);
        Ids(w, Receivers);
        Ids(w, OldHolders);
        w.U32((uint)FromVersion).String(Name ?? "").String(JsonSerializer.Serialize(Labels ?? new Dictionary<string, string>()));
        if (Evicting is uint evicted)
        {
            w.U32(evicted);
        }

        return w.ToArray();
    }

    public static RotationPlan FromBytes(ReadOnlySpan<byte> data)
    {
        var r = new PayloadReader(data);
        uint format = r.U32("format");
        if (format is not (1 or 2))
        {
            throw new FormatException("unknown rotation plan format");
        }

        var kind = (RotationKind)r.U32("kind");
        string keyId = r.String("keyId");
        string scheme = r.String("scheme");
        int threshold = (int)r.U32("threshold");
        uint[] dealers = r.NodeIds("dealers");
        uint[] receivers = r.NodeIds("receivers");
        uint[] old = r.NodeIds("oldHolders", allowEmpty: true);
        int from = (int)r.U32("fromVersion");
        string name = r.String("name");
        string labels = r.String("labels", 1 << 16);
        uint? evicting = format == 2 ? r.U32("evicting") : null;
        r.End();
        if (evicting is 0)
        {
            throw new FormatException("a rotation plan's evicted node is a node id");
        }

        return new RotationPlan(kind, keyId, scheme, threshold, dealers, receivers, old, from, name.Length == 0 ? null : name,
            JsonSerializer.Deserialize<Dictionary<string, string>>(labels))
        {
            Evicting = evicting,
        };
    }

    private static void Ids(PayloadWriter w, IReadOnlyList<uint> ids)
    {
        w.U32((uint)ids.Count);
        foreach (uint id in ids)
        {
            w.U32(id);
        }
    }
}
