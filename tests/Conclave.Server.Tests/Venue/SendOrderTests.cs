using Conclave.Server.Chains;

namespace Conclave.Server.Tests.Venue;

/// <summary>
/// Sends of one account leave in nonce order (SendOrder): a nonce waits for its predecessor's send, not for ever, and
/// accounts do not wait for each other. Found under load: 200 concurrent transactions reached anvil out of nonce order
/// and 151 of them stayed queued behind a mined predecessor.
/// </summary>
public sealed class SendOrderTests
{
    private const string A = "0x00000000000000000000000000000000000000aa";
    private const string B = "0x00000000000000000000000000000000000000bb";

    [Fact]
    public async Task A_nonce_waits_for_its_predecessor_to_be_sent()
    {
        var order = new SendOrder(TimeSpan.FromSeconds(30));
        order.Observe(1, A, 10);
        await order.WaitTurnAsync(1, A, 10, CancellationToken.None); // the chain's pending count: goes at once

        Task eleven = order.WaitTurnAsync(1, A, 11, CancellationToken.None);
        Task twelve = order.WaitTurnAsync(1, A, 12, CancellationToken.None);
        order.Observe(1, B, 11);
        await order.WaitTurnAsync(1, B, 11, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10)); // another account waits for nothing of A's
        Assert.False(eleven.IsCompleted);
        Assert.False(twelve.IsCompleted);

        order.Sent(1, A, 10);
        await eleven.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(twelve.IsCompleted);
        order.Sent(1, A, 11);
        await twelve.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_predecessor_that_never_comes_holds_a_send_only_until_the_deadline()
    {
        var order = new SendOrder(TimeSpan.FromMilliseconds(200));
        order.Observe(1, A, 0);
        await order.WaitTurnAsync(1, A, 1, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10)); // 0 was given back: goes after 200 ms

        // A higher pending count on the chain (another replica sent) frees the waiter at once.
        var slow = new SendOrder(TimeSpan.FromSeconds(30));
        slow.Observe(1, A, 0);
        Task five = slow.WaitTurnAsync(1, A, 5, CancellationToken.None);
        Assert.False(five.IsCompleted);
        slow.Observe(1, A, 5);
        await five.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Sends_out_of_order_still_advance_the_floor()
    {
        var order = new SendOrder(TimeSpan.FromSeconds(30));
        order.Observe(1, A, 0);
        order.Sent(1, A, 2); // went at its deadline before 1
        order.Sent(1, A, 0);
        Task three = order.WaitTurnAsync(1, A, 3, CancellationToken.None);
        await order.WaitTurnAsync(1, A, 1, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await three.WaitAsync(TimeSpan.FromSeconds(10)); // 2 was sent, so 3 goes
    }
}
