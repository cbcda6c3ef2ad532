using Conclave.Crypto;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Engine;
using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Server.Threshold.Sharing;

/// <summary>
/// DKG complaints on the cluster (issue 14 item 4; docs/FROST.md "Complaints on the cluster"). A receiver whose finish step
/// finds a share or chain-code contribution that does not match its dealer's commitments answers with signed complaints
/// (<see cref="FrostMessages.DkgComplaint"/>), each carrying the dealer's own signed round-two message. The coordinator
/// (<see cref="DkgRounds"/>) checks each with <see cref="Dkg.VerifyComplaint"/> against the dealer's commitment and
/// round-one broadcast it relayed: a complaint that holds convicts the dealer, one that does not (or a malformed one, or
/// one in another receiver's name) convicts the complainer. Convicted nodes are marked suspect for the operator
/// (<see cref="NodeHealth.Suspects"/>), reported to <see cref="ThresholdEngine.OnCulprits"/> (the server's audit log)
/// and named in the <see cref="CulpritException"/> that aborts the run.
/// </summary>
internal static class DkgComplaints
{
    /// <summary>How a conviction reads in the run's error.</summary>
    internal static string Describe(CulpritReason c) => c.Reason switch
    {
        CulpritReason.InvalidDkgShare => $"node {c.Node} dealt a share or chain-code contribution that does not match its commitments (proven by its own signed message)",
        CulpritReason.FalseComplaint => $"node {c.Node} complained about a dealer without valid evidence",
        _ => $"node {c.Node}: {c.Reason}",
    };

    /// <summary>
    /// Judges every complaint of the finish step. Each complaint message is signed by its sender (verified by
    /// <see cref="NodeClient"/>); its complaints must be in the sender's name and about a dealer of the run.
    /// </summary>
    internal static List<CulpritReason> Judge(byte[] session, RotationPlan plan, FrostCiphersuite suite, PublicKeyPackage? oldKey,
        IReadOnlyList<Envelope> commitments, IReadOnlyList<Envelope> broadcasts, IReadOnlyList<Envelope> complaints)
    {
        DkgSession dkg = plan.Kind switch
        {
            RotationKind.KeyGeneration => DkgSession.ForKeyGeneration(suite, session, plan.Threshold, Ids(suite, plan.Receivers)),
            RotationKind.Refresh => DkgSession.ForRefresh(session, oldKey ?? throw new InvalidOperationException("a refresh needs the old key")),
            RotationKind.Reshare => DkgSession.ForReshare(session, oldKey ?? throw new InvalidOperationException("a reshare needs the old key"),
                Ids(suite, plan.Dealers), plan.Threshold, Ids(suite, plan.Receivers)),
            _ => throw new InvalidOperationException("repair runs have no DKG complaints"),
        };

        var convicted = new List<CulpritReason>();
        void Convict(uint node, string reason)
        {
            if (!convicted.Any(c => c.Node == node && c.Reason == reason))
            {
                convicted.Add(new CulpritReason(node, reason));
            }
        }

        foreach (Envelope e in complaints.OrderBy(e => e.Sender))
        {
            uint accuser = e.Sender;
            List<DkgComplaint> list;
            try
            {
                list = ParseComplaints(suite, e.Payload.Span);
            }
            catch (Exception x) when (x is ProtocolException or CryptoFormatException or ArgumentException)
            {
                Convict(accuser, CulpritReason.FalseComplaint); // signed by it, and not even well formed
                continue;
            }

            foreach (DkgComplaint complaint in list)
            {
                if (!complaint.Accuser.Equals(Identifier.FromInt(suite, (int)accuser)) || !plan.Receivers.Contains(accuser))
                {
                    Convict(accuser, CulpritReason.FalseComplaint); // in another receiver's name
                    continue;
                }

                uint accused = FrostNodeIds.ToNode(complaint.Accused);
                Envelope? commitment = commitments.FirstOrDefault(c => c.Sender == accused);
                Envelope? broadcast = broadcasts.FirstOrDefault(b => b.Sender == accused);
                bool upheld = false;
                if (commitment is not null && broadcast is not null && plan.Dealers.Contains(accused))
                {
                    try
                    {
                        upheld = Dkg.VerifyComplaint(dkg, complaint, DkgCommitment.FromBytes(suite, commitment.Payload.Span), DkgRound1Package.FromBytes(suite, broadcast.Payload.Span));
                    }
                    catch (ArgumentException)
                    {
                        // The complaint does not belong to this dealer and receiver (the relayed commitment and broadcast
                        // were checked by every node against each other already): the complainer's doing.
                        upheld = false;
                    }
                }

                Convict(upheld ? accused : accuser, upheld ? CulpritReason.InvalidDkgShare : CulpritReason.FalseComplaint);
            }
        }

        return convicted;
    }

    private static List<DkgComplaint> ParseComplaints(FrostCiphersuite suite, ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        uint count = r.U32("count");
        if (count is 0 or > FrostMessages.MaxComplaints)
        {
            throw new ProtocolException($"a complaint message carries 1 to {FrostMessages.MaxComplaints} complaints");
        }

        var list = new List<DkgComplaint>((int)count);
        for (uint i = 0; i < count; i++)
        {
            list.Add(DkgComplaint.FromBytes(suite, r.Bytes("complaint", 4096)));
        }

        r.End();
        return list;
    }

    private static Identifier[] Ids(FrostCiphersuite suite, IReadOnlyList<uint> nodes) => [.. nodes.Select(n => Identifier.FromInt(suite, (int)n))];
}
