using Conclave.Node.Frost;
using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;
using Conclave.Server.Threshold.Sharing;
using Envelope = Conclave.Node.Rpc.Envelope;

namespace Conclave.Server.Tests;

/// <summary>
/// The coordinator's first-hand check of an agreement step (docs/ROTATION.md "Forward secrecy of relayed shares"): the
/// nodes that receive relayed run keys name nobody for a missing or doubled one (the coordinator could have arranged
/// either), so the coordinator names a node whose own signed reply held none or several.
/// </summary>
public sealed class RunKeyCulpritTests
{
    /// <summary>The coordinator names a node whose own reply to an agreement step held no run key, or more than one.</summary>
    [Fact]
    public void The_coordinator_names_a_node_whose_own_reply_held_no_run_key_or_two()
    {
        Envelope Key(uint sender, byte tag) => new() { Sender = sender, Kind = FrostMessages.RepairAgreementKey, Payload = Google.Protobuf.ByteString.CopyFrom([tag]) };
        var good = new Dictionary<uint, IReadOnlyList<Envelope>> { [1] = [Key(1, 1)], [2] = [Key(2, 2), new Envelope { Sender = 2, Kind = "other" }] };
        Assert.Equal([1u, 2u], RunAgreementKeys.OneEach(good, FrostMessages.RepairAgreementKey).Select(e => e.Sender));
        var two = new Dictionary<uint, IReadOnlyList<Envelope>> { [1] = [Key(1, 1)], [3] = [Key(3, 1), Key(3, 2)] };
        Assert.Equal([3u], Assert.Throws<CulpritException>(() => RunAgreementKeys.OneEach(two, FrostMessages.RepairAgreementKey)).Culprits);
        var none = new Dictionary<uint, IReadOnlyList<Envelope>> { [2] = [], [1] = [Key(1, 1)] };
        Assert.Equal([2u], Assert.Throws<CulpritException>(() => RunAgreementKeys.OneEach(none, FrostMessages.RepairAgreementKey)).Culprits);
    }
}
