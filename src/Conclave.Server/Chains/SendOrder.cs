namespace Conclave.Server.Chains;

/// <summary>
/// Transactions of one account leave this server in nonce order (issue 17, nonce manager). Concurrent requests reserve
/// nonces in order but sign in parallel, so without this a transaction could reach the node before its predecessor;
/// a node then queues it as a future-nonce transaction, and not every node promotes it when the gap fills (anvil, under
/// load, kept 151 transactions queued behind a mined predecessor for good). A send waits until the previous nonce was
/// sent by this server, or lies below the chain's pending count, or <see cref="MaxWait"/> passed (the previous nonce
/// failed and was given back, or another replica sends it): then it goes anyway, so nothing waits for ever.
/// </summary>
public sealed class SendOrder(TimeSpan? maxWait = null)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(long Chain, string Address), Account> _accounts = [];

    /// <summary>The longest a send waits for its predecessor.</summary>
    public TimeSpan MaxWait { get; } = maxWait ?? TimeSpan.FromSeconds(5);

    /// <summary>The chain's pending transaction count of the account (read at reservation): every nonce below it is done.</summary>
    public void Observe(long chainId, string address, long pending)
    {
        lock (_gate)
        {
            Account a = Get(chainId, address);
            if (pending > a.Floor)
            {
                a.Floor = pending;
                a.Advance();
            }
        }
    }

    /// <summary>Waits until <paramref name="nonce"/> may be sent (see the class summary).</summary>
    public async Task WaitTurnAsync(long chainId, string address, long nonce, CancellationToken ct)
    {
        long deadline = Environment.TickCount64 + (long)MaxWait.TotalMilliseconds;
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                Account a = Get(chainId, address);
                if (nonce <= a.Floor || a.Done.Contains(nonce - 1))
                {
                    return;
                }

                changed = a.Changed.Task;
            }

            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return;
            }

            try
            {
                await changed.WaitAsync(TimeSpan.FromMilliseconds(left), ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                return;
            }
        }
    }

    /// <summary>The transaction with <paramref name="nonce"/> was sent (or handed to the caller unsent).</summary>
    public void Sent(long chainId, string address, long nonce)
    {
        lock (_gate)
        {
            Account a = Get(chainId, address);
            if (nonce >= a.Floor)
            {
                a.Done.Add(nonce);
                a.Advance();
            }
        }
    }

    private Account Get(long chainId, string address)
    {
        if (!_accounts.TryGetValue((chainId, address), out Account? a))
        {
            _accounts[(chainId, address)] = a = new Account();
        }

        return a;
    }

    private sealed class Account
    {
        /// <summary>Every nonce below it is done.</summary>
        public long Floor { get; set; }

        /// <summary>Nonces at or above <see cref="Floor"/> already sent.</summary>
        public HashSet<long> Done { get; } = [];

        public TaskCompletionSource Changed { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Moves the floor over sent nonces and wakes every waiter.</summary>
        public void Advance()
        {
            Done.RemoveWhere(n => n < Floor);
            while (Done.Remove(Floor))
            {
                Floor++;
            }

            TaskCompletionSource old = Changed;
            Changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            old.TrySetResult();
        }
    }
}
