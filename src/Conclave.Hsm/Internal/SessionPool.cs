using System.Collections.Concurrent;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace Conclave.Hsm.Internal;

/// <summary>
/// A bounded pool of read/write sessions to one token. PKCS#11 login state belongs to the application, not to a
/// session (PKCS#11 v2.40 base spec section 5.6, C_Login): the token logs in once on the anchor session, and every
/// session opened afterwards is already in the R/W user state. The anchor stays open for the pool's lifetime so
/// the login never lapses. A session serves one operation at a time; the pool hands each out exclusively.
/// </summary>
internal sealed class SessionPool : IDisposable
{
    private readonly ISlot _slot;
    private readonly Action<ISession> _login;
    private readonly Lock _loginLock = new();
    private ISession _anchor;
    private readonly SemaphoreSlim _permits;
    private readonly ConcurrentBag<ISession> _idle = [];
    private readonly Lock _lock = new();
    private readonly List<ISession> _all = [];
    private readonly string _tokenLabel;
    private readonly TimeSpan _acquireTimeout;
    private bool _disposed;

    /// <param name="login">Logs the application in on the given session (reading the PIN afresh); used to recover
    /// after the token logged the application out.</param>
    internal SessionPool(ISlot slot, ISession loggedInAnchor, int size, TimeSpan acquireTimeout, string tokenLabel, Action<ISession> login)
    {
        _slot = slot;
        _anchor = loggedInAnchor;
        _login = login;
        Size = size;
        _permits = new SemaphoreSlim(size, size);
        _acquireTimeout = acquireTimeout;
        _tokenLabel = tokenLabel;
    }

    internal int Size { get; }

    /// <summary>How many sessions have been opened so far (at most <see cref="Size"/>, plus the anchor).</summary>
    internal int OpenedCount
    {
        get
        {
            lock (_lock)
            {
                return _all.Count;
            }
        }
    }

    /// <summary>Takes a session, blocking the calling thread while all are busy (see <see cref="RentAsync"/>).</summary>
    internal Lease Rent()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        if (!_permits.Wait(_acquireTimeout))
        {
            throw HsmErrors.SessionPoolExhausted(_tokenLabel, Size, _acquireTimeout);
        }

        return TakePermitted();
    }

    /// <summary>
    /// Takes a session; while all are busy the wait is asynchronous (<see cref="SemaphoreSlim.WaitAsync(TimeSpan, CancellationToken)"/>),
    /// so no thread-pool thread is blocked.
    /// </summary>
    internal async ValueTask<Lease> RentAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        if (!await _permits.WaitAsync(_acquireTimeout, cancellationToken).ConfigureAwait(false))
        {
            throw HsmErrors.SessionPoolExhausted(_tokenLabel, Size, _acquireTimeout);
        }

        return TakePermitted();
    }

    /// <summary>
    /// After a failure with <paramref name="rv"/> on <paramref name="session"/>: if the application is no longer logged
    /// in (the token logged it out, or every session was closed), drops the idle sessions, logs in again (reading the
    /// PIN afresh) and returns true so the caller retries once. Returns false when the failure has another cause.
    /// </summary>
    internal bool TryRecoverLogin(ISession session, CKR rv)
    {
        if (rv is not (CKR.CKR_USER_NOT_LOGGED_IN or CKR.CKR_KEY_HANDLE_INVALID or CKR.CKR_OBJECT_HANDLE_INVALID
            or CKR.CKR_SESSION_HANDLE_INVALID or CKR.CKR_SESSION_CLOSED))
        {
            return false;
        }

        if (IsLoggedIn(session))
        {
            return false;
        }

        lock (_loginLock)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
            while (_idle.TryTake(out ISession? idle))
            {
                lock (_lock)
                {
                    _ = _all.Remove(idle);
                }

                CloseQuietly(idle);
            }

            if (!IsAlive(_anchor))
            {
                CloseQuietly(_anchor);
                _anchor = _slot.OpenSession(SessionType.ReadWrite);
            }

            _login(_anchor);
        }

        return true;
    }

    /// <summary>Whether <paramref name="session"/> is open and in a user state (false if it is closed or public).</summary>
    internal static bool IsLoggedIn(ISession session)
    {
        try
        {
            return session.GetSessionInfo().State is CKS.CKS_RW_USER_FUNCTIONS or CKS.CKS_RO_USER_FUNCTIONS;
        }
        catch (Pkcs11Exception)
        {
            return false;
        }
    }

    private static bool IsAlive(ISession session)
    {
        try
        {
            _ = session.GetSessionInfo();
            return true;
        }
        catch (Pkcs11Exception)
        {
            return false;
        }
    }

    private Lease TakePermitted()
    {
        try
        {
            if (!_idle.TryTake(out ISession? session))
            {
                session = _slot.OpenSession(SessionType.ReadWrite);
                lock (_lock)
                {
                    _all.Add(session);
                }
            }

            return new Lease(this, session);
        }
        catch
        {
            _ = _permits.Release();
            throw;
        }
    }

    private void Return(ISession session, bool broken)
    {
        bool close;
        lock (_lock)
        {
            close = broken || _disposed;
            if (close)
            {
                _ = _all.Remove(session);
            }
        }

        if (close)
        {
            CloseQuietly(session);
        }
        else
        {
            _idle.Add(session);
        }

        try
        {
            _ = _permits.Release();
        }
        catch (ObjectDisposedException)
        {
            // The pool was disposed while this lease was out.
        }
    }

    public void Dispose()
    {
        List<ISession> toClose;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            toClose = [.. _all];
            _all.Clear();
        }

        foreach (ISession s in toClose)
        {
            CloseQuietly(s);
        }

        // No C_Logout: login state is shared by every session of the application, and another HsmToken of this
        // process may still use the token. Closing the application's last session logs it out (C_CloseSession).
        CloseQuietly(_anchor);
        _permits.Dispose();
    }

    private static void CloseQuietly(ISession session)
    {
        try
        {
            session.Dispose();
        }
        catch (Pkcs11Exception)
        {
            // The session is already invalid (token removed, module reset).
        }
    }

    /// <summary>Whether a failure means the session itself is unusable and must not go back to the pool.</summary>
    internal static bool IsSessionBroken(CKR rv) => rv is CKR.CKR_SESSION_HANDLE_INVALID or CKR.CKR_SESSION_CLOSED
        or CKR.CKR_DEVICE_REMOVED or CKR.CKR_DEVICE_ERROR or CKR.CKR_TOKEN_NOT_PRESENT or CKR.CKR_USER_NOT_LOGGED_IN
        or CKR.CKR_OPERATION_ACTIVE or CKR.CKR_CRYPTOKI_NOT_INITIALIZED;

    /// <summary>One exclusively held session; disposing returns it (or closes it, if it broke).</summary>
    internal sealed class Lease : IDisposable
    {
        private readonly SessionPool _pool;
        private bool _broken;
        private int _returned;

        internal Lease(SessionPool pool, ISession session)
        {
            _pool = pool;
            Session = session;
        }

        internal ISession Session { get; }

        /// <summary>Marks the session unusable after a failure (see <see cref="IsSessionBroken"/>).</summary>
        internal void MarkBroken() => _broken = true;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _returned, 1) == 0)
            {
                _pool.Return(Session, _broken);
            }
        }
    }
}
