using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;
using Grpc.Core;

namespace Conclave.Server.Tests;

/// <summary>
/// The coordinator half of the threshold engine on its own, with a stand-in protocol: pools keyed per signer set (as a
/// presigning protocol keys them), and the retry loop of an online round with down-marking, refusals and the newest key
/// version. The FROST cluster tests run the same engine with real nodes.
/// </summary>
public sealed class ThresholdEngineTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// A run's plan as the run log keeps it: a plan without an evicted node is written in format 1, as before format 2
    /// existed (a run recorded by an older server still reads); an eviction's move (format 2) keeps the node it moves the
    /// key off, which run recovery audits the move from; a plan naming node 0 or an unknown format is refused.
    /// </summary>
    [Fact]
    public void RotationPlan_KeepsTheEvictedNode_AndWritesFormatOneWithoutIt()
    {
        var plain = new RotationPlan(Storage.Rotation.RotationKind.Reshare, "k1", "ecdsa-dkls23", 2, [1, 2], [1, 2], [1, 2], 1);
        byte[] one = plain.ToBytes();
        Assert.Equal(1u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(one));
        RotationPlan back = RotationPlan.FromBytes(one);
        Assert.Null(back.Evicting);
        Assert.Equal((plain.KeyId, plain.Threshold, plain.FromVersion), (back.KeyId, back.Threshold, back.FromVersion));
        Assert.Equal(plain.Receivers, back.Receivers);

        RotationPlan move = plain with { Evicting = 3 };
        byte[] two = move.ToBytes();
        Assert.Equal(2u, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(two));
        Assert.Equal(one.Length + 4, two.Length);
        RotationPlan moved = RotationPlan.FromBytes(two);
        Assert.Equal(3u, moved.Evicting);
        Assert.Equal(plain.Everyone, moved.Everyone);
        Assert.Throws<FormatException>(() => RotationPlan.FromBytes((plain with { Evicting = 0 }).ToBytes()));
        Assert.Throws<Conclave.Node.Protocol.ProtocolException>(() => RotationPlan.FromBytes(two.AsSpan(0, one.Length)));
    }

    [Fact]
    public async Task MaterialPools_HandEachItemToOneCaller_WithOneRefillInFlightPerPool()
    {
        var release = new TaskCompletionSource();
        int fetches = 0;
        int next = 0;
        var pools = new MaterialPools<(string Key, int Version, string Signers), Item>(async (pool, ct) =>
        {
            Interlocked.Increment(ref fetches);
            await release.Task.WaitAsync(ct);
            return [.. Enumerable.Range(0, 4).Select(_ => new Item(pool.Signers, Interlocked.Increment(ref next)))];
        }, (_, _) => false) { LowWater = 0 };
        var set = ("key-a", 1, "1,2");

        Task<Item?> first = pools.TakeAsync(set, CancellationToken.None);
        Task<Item?> second = pools.TakeAsync(set, CancellationToken.None);
        release.SetResult();
        Item?[] taken = await Task.WhenAll(first, second);

        Assert.Equal(1, fetches);
        Assert.All(taken, i => Assert.Equal("1,2", i!.Signers));
        Assert.NotEqual(taken[0]!.Serial, taken[1]!.Serial);
        Assert.Equal(2, pools.Depth(set));
        Assert.Equal(0, pools.Depth(("key-a", 1, "1,3")));

        pools.Drop(p => p.Key == "key-a" && p.Signers == "1,2");
        Assert.Equal(0, pools.Depth(set));
    }

    [Fact]
    public async Task MaterialPools_TakeReturnsNull_WhenARefillBringsNothing()
    {
        var pools = new MaterialPools<string, Item>((_, _) => Task.FromResult<IReadOnlyList<Item>>([]), (_, _) => false);
        Assert.Null(await pools.TakeAsync("empty", CancellationToken.None));
    }

    [Fact]
    public async Task QuorumCall_RestsANodeThatFailedInTransport_AndRetriesWithoutIt()
    {
        var health = new NodeHealth(new ManualClock(Start));
        var key = new TestKey("key-a", 1, 2, [1, 2, 3]);
        var quorums = new List<IReadOnlyList<uint>>();
        string result = await QuorumCall.RunAsync(health, key, _ => key, 3, (_, n) => n == 1 ? 10 : 0, (k, quorum, call, _) =>
        {
            quorums.Add(quorum);
            if (quorums.Count == 1)
            {
                call.RoundFailed(1, new NodeCallException(1, StatusCode.Unavailable, "node 1 is down", null, null), () => throw new InvalidOperationException());
                return Task.FromResult<string?>(null);
            }

            return Task.FromResult<string?>("signed by " + string.Join(",", quorum.Order()));
        }, CancellationToken.None);

        Assert.Contains(1u, quorums[0]); // the deepest pool is preferred
        Assert.Equal("signed by 2,3", result);
        Assert.True(health.IsResting(1));
        Assert.False(health.IsResting(2));
    }

    [Fact]
    public async Task QuorumCall_DropsTheMaterialOfANodeThatRefuses_GivesItOneMoreChance_ThenNamesTheFailures()
    {
        var clock = new ManualClock(Start);
        var health = new NodeHealth(clock);
        var key = new TestKey("key-a", 1, 2, [1, 2]);
        int drops = 0;
        int attempts = 0;
        QuorumUnavailableException e = await Assert.ThrowsAsync<QuorumUnavailableException>(() => QuorumCall.RunAsync<TestKey, string>(health, key, _ => key, 5,
            (_, _) => 0, (k, quorum, call, _) =>
            {
                attempts++;
                Assert.Equal([1u, 2u], quorum.Order());
                call.RoundFailed(2, new NodeCallException(2, StatusCode.FailedPrecondition, "node 2 refused: unknown nonce", null, null), () => drops++);
                return Task.FromResult<string?>(null);
            }, CancellationToken.None));

        Assert.Equal(2, attempts); // the second refusal leaves node 2 out, and one node is no quorum of two
        Assert.Equal(2, drops);
        Assert.False(health.IsResting(2)); // a refusal is not a transport failure
        Assert.Contains("no quorum of 2 nodes could sign with key key-a", e.Message, StringComparison.Ordinal);
        Assert.Contains("node 2 refused: unknown nonce", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QuorumCall_MovesToTheNewestKeyVersion_AndForgetsWhatItLearntAboutTheOlderOne()
    {
        var health = new NodeHealth(new ManualClock(Start));
        var v1 = new TestKey("key-a", 1, 2, [1, 2, 3]);
        var v2 = new TestKey("key-a", 2, 2, [1, 2, 3]);
        TestKey registered = v1;
        var seen = new List<(int Version, IReadOnlySet<uint> Excluded)>();
        string result = await QuorumCall.RunAsync(health, v1, _ => registered, 3, (_, _) => 0, (k, quorum, call, _) =>
        {
            seen.Add((k.Version, new HashSet<uint>(call.Excluded)));
            if (k.Version == 1)
            {
                call.MaterialUnavailable(new NodeCallException(quorum[0], StatusCode.FailedPrecondition, "holds version 2, not 1", null, null));
                registered = v2; // a refresh registered version 2 meanwhile
                return Task.FromResult<string?>(null);
            }

            return Task.FromResult<string?>("v" + k.Version);
        }, CancellationToken.None);

        Assert.Equal("v2", result);
        Assert.Equal(1, seen[0].Version);
        Assert.Equal(2, seen[1].Version);
        Assert.Empty(seen[1].Excluded);
    }

    /// <summary>
    /// Signing while refreshes run back to back (`conclave bench --cluster`, rows rotation/…/sign-during-refresh): every
    /// attempt raced a refresh that erased its version, and three such attempts ended the call with 503 quorum-unavailable
    /// although every node was up. An attempt overtaken by a newer version is not counted (up to a bound).
    /// </summary>
    [Fact]
    public async Task QuorumCall_AnAttemptOvertakenByANewerVersion_DoesNotUseUpTheCallsAttempts()
    {
        var health = new NodeHealth(new ManualClock(Start));
        TestKey registered = new("key-a", 1, 2, [1, 2, 3]);
        var versions = new List<int>();
        string result = await QuorumCall.RunAsync(health, registered, _ => registered, 3, (_, _) => 0, (k, quorum, call, _) =>
        {
            versions.Add(k.Version);
            if (k.Version < 6)
            {
                call.RoundFailed(quorum[0], new NodeCallException(quorum[0], StatusCode.FailedPrecondition, $"version {k.Version} is erased", null, null), () => { });
                registered = new TestKey("key-a", k.Version + 1, 2, [1, 2, 3]); // a refresh committed meanwhile
                return Task.FromResult<string?>(null);
            }

            return Task.FromResult<string?>("v" + k.Version);
        }, CancellationToken.None);

        Assert.Equal("v6", result);
        Assert.Equal([1, 2, 3, 4, 5, 6], versions);

        // Bounded: a key whose version moves at every attempt ends the call after its own attempts plus the bound.
        int attempts = 0;
        TestKey moving = new("key-b", 1, 2, [1, 2, 3]);
        await Assert.ThrowsAsync<QuorumUnavailableException>(() => QuorumCall.RunAsync<TestKey, string>(health, moving, _ => moving, 3, (_, _) => 0, (k, quorum, call, _) =>
        {
            attempts++;
            call.RoundFailed(quorum[0], new NodeCallException(quorum[0], StatusCode.FailedPrecondition, "erased", null, null), () => { });
            moving = new TestKey("key-b", k.Version + 1, 2, [1, 2, 3]);
            return Task.FromResult<string?>(null);
        }, CancellationToken.None));
        Assert.Equal(3 + QuorumCall.MaxSupersededAttempts, attempts);
    }

    [Fact]
    public void NodeHealth_ARestingNodeComesBackAfterItsDownTime()
    {
        var clock = new ManualClock(Start);
        var health = new NodeHealth(clock) { DownTime = TimeSpan.FromSeconds(5) };
        health.MarkDown(3);
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal([1u, 2u], health.ChooseQuorum([1, 2, 3], 2, new HashSet<uint>(), n => n == 3 ? 100 : 0).Order());
        }

        Assert.Equal([3u], health.Resting([1, 2, 3]));

        clock.Now += TimeSpan.FromSeconds(6);

        Assert.Equal([3u], health.ChooseQuorum([1, 2, 3], 1, new HashSet<uint>(), n => n == 3 ? 100 : 0));
        Assert.Empty(health.Resting([1, 2, 3]));
    }

    /// <summary>
    /// A resting node is still tried when the others cannot make the quorum (it may have restarted within its down time;
    /// NodeKeyRotationTests failed now and then because a restarted node rested while its peer was killed), the one back
    /// soonest first; an excluded or untrusted node never is.
    /// </summary>
    [Fact]
    public void NodeHealth_FillsAQuorumWithRestingNodes_OnlyWhenTheOthersAreTooFew()
    {
        var clock = new ManualClock(Start);
        var health = new NodeHealth(clock) { DownTime = TimeSpan.FromSeconds(5) };
        health.MarkDown(2);
        clock.Now += TimeSpan.FromSeconds(1);
        health.MarkDown(1);

        Assert.Equal([2u, 3u], health.ChooseQuorum([1, 2, 3], 2, new HashSet<uint>(), _ => 0).Order());
        Assert.Equal([1u, 2u, 3u], health.ChooseQuorum([1, 2, 3], 3, new HashSet<uint>(), _ => 0).Order());
        Assert.Equal([1u, 3u], health.ChooseQuorum([1, 2, 3], 2, new HashSet<uint> { 2 }, _ => 0).Order());

        health.MarkUntrusted(3);
        Assert.Equal([1u, 2u], health.ChooseQuorum([1, 2, 3], 3, new HashSet<uint>(), _ => 0).Order());
    }

    [Fact]
    public async Task QuorumCall_TriesARestingNode_WhenNoOtherQuorumIsLeft_AndLeavesItOutIfItFailsAgain()
    {
        var health = new NodeHealth(new ManualClock(Start));
        health.MarkDown(2);
        var key = new TestKey("key-a", 1, 2, [1, 2, 3]);
        var quorums = new List<IReadOnlyList<uint>>();
        QuorumUnavailableException e = await Assert.ThrowsAsync<QuorumUnavailableException>(() => QuorumCall.RunAsync<TestKey, string>(health, key, _ => key, 5, (_, _) => 0, (k, quorum, call, _) =>
        {
            quorums.Add(quorum);
            uint failing = quorum.Contains(1u) ? 1u : 2u;
            call.RoundFailed(failing, new NodeCallException(failing, StatusCode.Unavailable, $"node {failing} is down", null, null), () => throw new InvalidOperationException());
            return Task.FromResult<string?>(null);
        }, CancellationToken.None));

        Assert.Equal([1u, 3u], quorums[0].Order()); // the healthy ones first
        Assert.Equal([2u, 3u], quorums[1].Order()); // then the resting one rather than no quorum
        Assert.Equal(2, quorums.Count); // 2 failed again: left out, and no quorum is left
        Assert.Contains("node 2 is down", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Main's eviction kept under the engine: an untrusted (evicted) node is never chosen for a quorum, whatever its pool
    /// depth, until it is re-admitted; the mark does not expire like a rest does.
    /// </summary>
    [Fact]
    public void NodeHealth_AnUntrustedNodeIsNeverChosen_UntilItIsReadmitted()
    {
        var clock = new ManualClock(Start);
        var health = new NodeHealth(clock);
        health.MarkUntrusted(2);
        Assert.True(health.IsUntrusted(2));
        Assert.Equal([2u], health.Untrusted);
        Assert.Equal([1u, 3u], health.ChooseQuorum([1, 2, 3], 3, new HashSet<uint>(), n => n == 2 ? 100 : 0).Order());

        clock.Now += TimeSpan.FromDays(1);
        Assert.Equal([1u, 3u], health.ChooseQuorum([1, 2, 3], 3, new HashSet<uint>(), _ => 0).Order());

        health.Readmit(2);
        Assert.False(health.IsUntrusted(2));
        Assert.Equal([1u, 2u, 3u], health.ChooseQuorum([1, 2, 3], 3, new HashSet<uint>(), _ => 0).Order());
    }

    private sealed record Item(string Signers, int Serial);

    private sealed record TestKey(string KeyId, int Version, int Threshold, IReadOnlyList<uint> Nodes) : IThresholdKey;

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
