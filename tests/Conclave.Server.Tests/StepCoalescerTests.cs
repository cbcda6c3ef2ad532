using System.Collections.Concurrent;
using Conclave.Server.Threshold.Engine;

namespace Conclave.Server.Tests;

/// <summary>
/// The engine's step coalescer on its own (issue 18), with a stand-in send whose steps the test releases by hand: a lone
/// call leaves at once and alone, calls made while the node's steps are all out share the next step, steps never carry
/// more than the cap, outcomes reach their own callers, a failed step fails exactly its own items, a caller that gave up
/// before its step left is never sent, and nodes never share steps. Random arrival orders come from the run seed.
/// </summary>
public sealed class StepCoalescerTests
{
    [Fact]
    public async Task ALoneCall_LeavesAtOnceAlone_AndCallsWhileTheStepsAreOut_ShareTheNextStep()
    {
        var steps = new Steps();
        var coalescer = new StepCoalescer<int, string>(steps.Send) { MaxStepsInFlight = 1 };

        Task<string> first = coalescer.CallAsync(1, 10, CancellationToken.None);
        Assert.Equal([10], Assert.Single(steps.SentTo(1)));

        // While node 1's only step is out, three more calls queue; the step's return sends all three in one step.
        Task<string>[] queued = [.. new[] { 11, 12, 13 }.Select(i => coalescer.CallAsync(1, i, CancellationToken.None))];
        Assert.Single(steps.SentTo(1));
        steps.Release(0);
        Assert.Equal("item 10 from node 1", await first);
        await steps.WaitForStepsAsync(2);
        Assert.Equal([11, 12, 13], steps.SentTo(1)[1]);
        steps.Release(1);
        Assert.Equal(["item 11 from node 1", "item 12 from node 1", "item 13 from node 1"], await Task.WhenAll(queued));
        Assert.Equal((4L, 2L), coalescer.Sent);

        // Idle again: the next call leaves at once and alone.
        Task<string> later = coalescer.CallAsync(1, 14, CancellationToken.None);
        Assert.Equal([14], steps.SentTo(1)[2]);
        steps.Release(2);
        Assert.Equal("item 14 from node 1", await later);
    }

    [Fact]
    public async Task StepsNeverCarryMoreThanTheCap_AndEveryOutcomeReachesItsOwnCaller()
    {
        var steps = new Steps();
        var coalescer = new StepCoalescer<int, string>(steps.Send) { MaxStepsInFlight = 2, MaxItems = 5 };
        Random random = TestSeed.Random("coalescer arrival order");
        int[] items = [.. Enumerable.Range(100, 40).OrderBy(_ => random.Next())];

        var calls = new List<(int Item, uint Node, Task<string> Task)>();
        foreach (int item in items)
        {
            uint node = (uint)(1 + (item % 3));
            calls.Add((item, node, coalescer.CallAsync(node, item, CancellationToken.None)));
        }

        steps.ReleaseAllAsTheyCome();
        foreach ((int item, uint node, Task<string> task) in calls)
        {
            Assert.Equal($"item {item} from node {node}", await task);
        }

        foreach (uint node in new uint[] { 1, 2, 3 })
        {
            IReadOnlyList<int[]> sent = steps.SentTo(node);
            Assert.All(sent, s => Assert.InRange(s.Length, 1, 5));
            // Every item of the node left exactly once, and only to its own node.
            Assert.Equal(items.Where(i => (uint)(1 + (i % 3)) == node).Order(), sent.SelectMany(s => s).Order());
            // The first two calls found room and left alone; the rest waited and shared steps.
            Assert.Single(sent[0]);
            Assert.Single(sent[1]);
            Assert.True(sent.Count < items.Count(i => (uint)(1 + (i % 3)) == node), "calls made while the node's steps were out shared steps");
        }
    }

    [Fact]
    public async Task AFailedStep_FailsItsOwnItems_AndARefusedItemFailsAlone()
    {
        var steps = new Steps { RefuseItem = 21 };
        var coalescer = new StepCoalescer<int, string>(steps.Send) { MaxStepsInFlight = 1 };
        Task<string> lone = coalescer.CallAsync(1, 20, CancellationToken.None);
        Task<string>[] queued = [.. new[] { 21, 22 }.Select(i => coalescer.CallAsync(1, i, CancellationToken.None))];

        steps.Fail(0, new TimeoutException("node 1 timed out"));
        Assert.Equal("node 1 timed out", (await Assert.ThrowsAsync<TimeoutException>(() => lone)).Message);

        await steps.WaitForStepsAsync(2);
        steps.Release(1);
        Assert.Equal("item 21 refused", (await Assert.ThrowsAsync<InvalidOperationException>(() => queued[0])).Message);
        Assert.Equal("item 22 from node 1", await queued[1]);
    }

    [Fact]
    public async Task ACallerThatGivesUpBeforeItsStepLeaves_IsNeverSent()
    {
        var steps = new Steps();
        var coalescer = new StepCoalescer<int, string>(steps.Send) { MaxStepsInFlight = 1 };
        Task<string> first = coalescer.CallAsync(1, 30, CancellationToken.None);
        using var gaveUp = new CancellationTokenSource();
        Task<string> cancelled = coalescer.CallAsync(1, 31, gaveUp.Token);
        Task<string> kept = coalescer.CallAsync(1, 32, CancellationToken.None);
        await gaveUp.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);

        steps.Release(0);
        await first;
        await steps.WaitForStepsAsync(2);
        Assert.Equal([32], steps.SentTo(1)[1]);
        steps.Release(1);
        Assert.Equal("item 32 from node 1", await kept);
        Assert.Throws<OperationCanceledException>(() => { _ = coalescer.CallAsync(1, 33, gaveUp.Token); });
    }

    /// <summary>A stand-in node transport: records every step and answers it when the test says.</summary>
    private sealed class Steps
    {
        private readonly Lock _gate = new();
        private readonly List<(uint Node, int[] Items, TaskCompletionSource<IReadOnlyList<CoalescedOutcome<string>>> Reply)> _steps = [];
        private readonly SemaphoreSlim _arrived = new(0);
        private bool _releaseAll;

        public int? RefuseItem { get; init; }

        public Task<IReadOnlyList<CoalescedOutcome<string>>> Send(uint node, IReadOnlyList<int> items)
        {
            var reply = new TaskCompletionSource<IReadOnlyList<CoalescedOutcome<string>>>(TaskCreationOptions.RunContinuationsAsynchronously);
            bool now;
            lock (_gate)
            {
                _steps.Add((node, [.. items], reply));
                now = _releaseAll;
            }

            _arrived.Release();
            if (now)
            {
                reply.SetResult(Answer(node, items));
            }

            return reply.Task;
        }

        public IReadOnlyList<int[]> SentTo(uint node)
        {
            lock (_gate)
            {
                return [.. _steps.Where(s => s.Node == node).Select(s => s.Items)];
            }
        }

        public async Task WaitForStepsAsync(int count)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (true)
            {
                lock (_gate)
                {
                    if (_steps.Count >= count)
                    {
                        return;
                    }
                }

                await _arrived.WaitAsync(timeout.Token);
            }
        }

        public void Release(int step)
        {
            (uint node, int[] items, var reply) = Get(step);
            reply.SetResult(Answer(node, items));
        }

        public void Fail(int step, Exception failure) => Get(step).Reply.SetException(failure);

        public void ReleaseAllAsTheyCome()
        {
            List<(uint Node, int[] Items, TaskCompletionSource<IReadOnlyList<CoalescedOutcome<string>>> Reply)> open;
            lock (_gate)
            {
                _releaseAll = true;
                open = [.. _steps];
            }

            foreach (var (node, items, reply) in open)
            {
                reply.TrySetResult(Answer(node, items));
            }
        }

        private (uint Node, int[] Items, TaskCompletionSource<IReadOnlyList<CoalescedOutcome<string>>> Reply) Get(int step)
        {
            lock (_gate)
            {
                return _steps[step];
            }
        }

        private List<CoalescedOutcome<string>> Answer(uint node, IReadOnlyList<int> items) =>
            [.. items.Select(i => i == RefuseItem
                ? CoalescedOutcome<string>.Failed(new InvalidOperationException($"item {i} refused"))
                : CoalescedOutcome<string>.Of($"item {i} from node {node}"))];
    }
}
