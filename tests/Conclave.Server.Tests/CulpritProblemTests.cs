using System.Text.Json;
using Conclave.Server.Api;
using Conclave.Server.Coordinator;
using Conclave.Storage;
using Conclave.Storage.Audit;
using Microsoft.Extensions.DependencyInjection;

namespace Conclave.Server.Tests;

/// <summary>
/// Issue 14 item 4, the server's side of a judged DKG complaint (the judging itself runs through real nodes in
/// Conclave.Node.Tests DkgComplaintTests): the 502 node-misbehaved problem names each culprit with its reason, and the
/// server's coordinator writes the convictions to the audit log.
/// </summary>
public sealed class CulpritProblemTests(NodelessServer s) : IClassFixture<NodelessServer>
{
    [Fact]
    public void JudgedCulprits_AreA502ProblemNamingEachNodeAndItsReason()
    {
        var e = new CulpritException([new CulpritReason(2, CulpritReason.InvalidDkgShare), new CulpritReason(3, CulpritReason.FalseComplaint)], "DKG complaints judged");
        ProblemBody p = ProblemTypes.FromException(e);
        Assert.Equal(502, p.Status);
        Assert.Equal(ProblemTypes.NodeMisbehaved, p.Type);
        Assert.Equal([2u, 3u], p.Culprits);
        using JsonDocument json = JsonDocument.Parse(JsonSerializer.Serialize(p, ApiJsonContext.Default.ProblemBody));
        JsonElement[] reasons = [.. json.RootElement.GetProperty("culpritReasons").EnumerateArray()];
        Assert.Equal(2, reasons.Length);
        Assert.Equal(2u, reasons[0].GetProperty("node").GetUInt32());
        Assert.Equal("invalid-dkg-share", reasons[0].GetProperty("reason").GetString());
        Assert.Equal(3u, reasons[1].GetProperty("node").GetUInt32());
        Assert.Equal("false-complaint", reasons[1].GetProperty("reason").GetString());

        // A culprit named without a judged reason (a bad signature share) keeps the problem as it was: no culpritReasons.
        using JsonDocument plain = JsonDocument.Parse(JsonSerializer.Serialize(ProblemTypes.FromException(new CulpritException([4u], "bad share")), ApiJsonContext.Default.ProblemBody));
        Assert.False(plain.RootElement.TryGetProperty("culpritReasons", out _));
        Assert.Equal(4u, plain.RootElement.GetProperty("culprits")[0].GetUInt32());
    }

    [Fact]
    public void AnEquivocatingDklsSigner_IsA502NamingItsReason_AndTheAuditEntryCarriesTheSignedEvidence()
    {
        // What DklsCoordinator.CheckRoundOneBroadcasts throws (DklsFiveNodeClusterTests makes a real node do it).
        var e = new CulpritException([new CulpritReason(4, CulpritReason.RoundOneEquivocation)], "node 4 sent different round-one broadcast commitments to different peers")
        {
            Evidence = [[1, 2, 3], [4, 5]],
        };
        ProblemBody p = ProblemTypes.FromException(e);
        Assert.Equal((502, ProblemTypes.NodeMisbehaved), (p.Status, p.Type));
        Assert.Equal([4u], p.Culprits);
        Assert.Equal("round-one-equivocation", Assert.Single(p.CulpritReasons!).Reason);
        Assert.Equal("culprit node 4; node 4: round-one-equivocation; evidence AQID BAU=", KeyService.CulpritDetail(e));
        Assert.Equal("culprit node 2,3", KeyService.CulpritDetail(new CulpritException([2u, 3u], "bad shares")));
        Assert.Equal("no culprit: the signers reported different nonce points R", KeyService.CulpritDetail(new CulpritException(Array.Empty<uint>(), "the signers reported different nonce points R")));
    }

    [Fact]
    public void AFailureNamingNobody_IsA502ThatSaysNoNodeCanBeNamed()
    {
        // What DklsCoordinator throws when the combined signature of tampered final shares does not verify
        // (DklsClusterAttackTests.TamperedFinalShares_…): the problem must not read "signer node(s)  misbehaved".
        var e = new CulpritException(Array.Empty<uint>(), "combining the signature shares failed (InvalidSignature): the combined signature does not verify");
        ProblemBody p = ProblemTypes.FromException(e);
        Assert.Equal((502, ProblemTypes.NodeMisbehaved), (p.Status, p.Type));
        Assert.Empty(p.Culprits ?? []);
        Assert.StartsWith("a signer misbehaved but no node can be named: combining the signature shares failed", p.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheServersCoordinator_AuditsItsConvictions()
    {
        FrostCoordinator frost = s.App.Services.GetRequiredService<FrostCoordinator>();
        IConclaveStore store = s.App.Services.GetRequiredService<IConclaveStore>();
        Assert.NotNull(frost.OnCulprits);
        string keyId = "k" + Guid.NewGuid().ToString("N")[..12];
        await frost.OnCulprits!(keyId, "ab12", [new CulpritReason(2, CulpritReason.InvalidDkgShare)], CancellationToken.None);
        long head = (await store.Audit.GetHeadAsync()).Seq;
        IReadOnlyList<AuditEntry> last = await store.Audit.ReadAsync(Math.Max(1, head - 20), 100);
        AuditEntry entry = Assert.Single(last, a => a.KeyId == keyId);
        Assert.Equal("rotation.culprit", entry.Action);
        Assert.Equal("deny", entry.Decision);
        Assert.Equal("run ab12: culprit node 2 (invalid-dkg-share)", entry.Result);
    }
}
