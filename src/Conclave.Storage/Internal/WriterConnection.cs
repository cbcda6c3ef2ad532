using System.Data.Common;
using System.Runtime.CompilerServices;

namespace Conclave.Storage.Internal;

/// <summary>
/// One long-lived connection for a writer that commits often (the audit log's writer, whose batches carry every signing
/// request's entries and velocity reservations), with the statements it runs kept compiled on it
/// (<see cref="SqlEngine.Statement"/>). A pooled open costs little, but each new command is parsed and planned again:
/// the four statements of a reservation compiled afresh were about half its time. Used by one writer at a time (the
/// caller serialises); a connection that failed is dropped and the next use opens a new one.
/// </summary>
internal sealed class WriterConnection : IAsyncDisposable
{
    /// <summary>
    /// A connection idle this long is replaced before its next use: a busy writer keeps one, and a quiet one does not
    /// find out at its next commit that a server or a firewall closed it meanwhile (that commit would fail).
    /// </summary>
    private const long IdleMs = 30_000;

    private static readonly ConditionalWeakTable<DbConnection, StatementCache> Caches = new();
    private DbConnection? _connection;
    private long _lastUsedMs;

    /// <summary>The open connection, opened now if there is none or it has been idle too long.</summary>
    public async Task<DbConnection> OpenAsync(SqlEngine engine, CancellationToken ct)
    {
        long now = Environment.TickCount64;
        if (_connection is { } open && now - _lastUsedMs < IdleMs)
        {
            _lastUsedMs = now;
            return open;
        }

        await CloseAsync().ConfigureAwait(false);
        DbConnection c = await engine.OpenAsync(ct).ConfigureAwait(false);
        Caches.AddOrUpdate(c, new StatementCache());
        _connection = c;
        _lastUsedMs = now;
        return c;
    }

    /// <summary>Closes the connection after a failure (it may be broken or in an unknown state); the next use opens another.</summary>
    public ValueTask DropAsync() => CloseAsync();

    public ValueTask DisposeAsync() => CloseAsync();

    private async ValueTask CloseAsync()
    {
        DbConnection? c = Interlocked.Exchange(ref _connection, null);
        if (c is null)
        {
            return;
        }

        if (Caches.TryGetValue(c, out StatementCache? cache))
        {
            cache.Dispose();
            Caches.Remove(c);
        }

        await c.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The statement cache of <paramref name="connection"/> if it is a writer connection.</summary>
    internal static StatementCache? CacheOf(DbConnection connection) => Caches.TryGetValue(connection, out StatementCache? cache) ? cache : null;

    /// <summary>Commands by SQL text, each lent to one user at a time; a text asked for while lent gets a new command.</summary>
    internal sealed class StatementCache : IDisposable
    {
        private readonly Dictionary<string, DbCommand> _idle = new(StringComparer.Ordinal);

        public DbCommand? Take(string sql)
        {
            if (!_idle.Remove(sql, out DbCommand? cmd))
            {
                return null;
            }

            cmd.Parameters.Clear(); // nothing of its last use is bound again
            return cmd;
        }

        public void Return(string sql, DbCommand cmd)
        {
            if (!_idle.TryAdd(sql, cmd))
            {
                cmd.Dispose();
            }
        }

        public void Dispose()
        {
            foreach (DbCommand cmd in _idle.Values)
            {
                cmd.Dispose();
            }

            _idle.Clear();
        }
    }
}

/// <summary>
/// A command lent for one statement (<see cref="SqlEngine.Statement"/>): on a <see cref="WriterConnection"/> it is the
/// connection's compiled command and goes back to it on disposal; on any other connection it is a new command, disposed.
/// </summary>
internal readonly struct Statement : IDisposable
{
    private readonly WriterConnection.StatementCache? _cache;
    private readonly string _sql;

    internal Statement(DbCommand command, WriterConnection.StatementCache? cache, string sql)
    {
        Command = command;
        _cache = cache;
        _sql = sql;
    }

    public DbCommand Command { get; }

    public void Dispose()
    {
        if (_cache is null)
        {
            Command.Dispose();
        }
        else
        {
            Command.Transaction = null;
            _cache.Return(_sql, Command);
        }
    }
}
