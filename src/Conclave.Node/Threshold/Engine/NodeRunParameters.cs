using Conclave.Node.Protocol;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// What a node records durably about a rotation run it takes part in (the Parameters of its RotationRun): the kind and
/// who deals and who receives, so commit, retire and abort can be checked after a restart without trusting the
/// coordinator's word for the participants.
/// </summary>
internal sealed record NodeRunParameters(DkgRunKind Kind, string Scheme, uint[] Dealers, uint[] Receivers, uint[] OldHolders)
{
    public byte[] ToBytes()
    {
        var w = new PayloadWriter().U32(1).U32((uint)Kind).String(Scheme).U32((uint)Dealers.Length);
        foreach (uint d in Dealers)
        {
            w.U32(d);
        }

        w.U32((uint)Receivers.Length);
        foreach (uint r in Receivers)
        {
            w.U32(r);
        }

        w.U32((uint)OldHolders.Length);
        foreach (uint o in OldHolders)
        {
            w.U32(o);
        }

        return w.ToArray();
    }

    public static NodeRunParameters FromBytes(ReadOnlySpan<byte> data)
    {
        var r = new PayloadReader(data);
        if (r.U32("format") != 1)
        {
            throw new ProtocolException("unknown run record format");
        }

        var kind = (DkgRunKind)r.U32("kind");
        string scheme = r.String("scheme");
        uint[] dealers = r.NodeIds("dealers");
        uint[] receivers = r.NodeIds("receivers");
        uint[] old = r.NodeIds("oldHolders", allowEmpty: true);
        r.End();
        return new NodeRunParameters(kind, scheme, dealers, receivers, old);
    }
}
