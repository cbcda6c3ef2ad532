using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Conclave.Crypto.Interop;

namespace Conclave.Crypto.Memory;

/// <summary>How a <see cref="SecretBuffer"/> holds its bytes.</summary>
public enum SecretMemoryKind
{
    /// <summary>A pinned managed array: cheap, never moved by the GC, zeroed on dispose. For short-lived secrets.</summary>
    Pinned,

    /// <summary>
    /// libsodium guarded memory (sodium_malloc): locked so it is not swapped, surrounded by guard pages,
    /// excluded from core dumps where the OS allows, zeroed on free. For long-lived keys.
    /// </summary>
    Guarded,
}

/// <summary>
/// A fixed-size buffer for secret bytes, zeroed when disposed (CONVENTIONS.md secret-handling rules 1 and 5).
/// Disposal is idempotent; any use after it throws <see cref="ObjectDisposedException"/>.
/// It never shows its content in <see cref="ToString"/> or the debugger.
/// </summary>
[System.Diagnostics.DebuggerDisplay("SecretBuffer({Length} bytes)")]
public sealed unsafe class SecretBuffer : IDisposable
{
    private byte[]? _pinned;
    private byte* _guarded;
    private readonly int _length;
    private int _disposed;

    private SecretBuffer(int length, SecretMemoryKind kind)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        _length = length;
        Kind = kind;
        if (kind == SecretMemoryKind.Guarded)
        {
            Sodium.EnsureInitialized();
            _guarded = (byte*)Sodium.sodium_malloc((nuint)length);
            if (_guarded is null)
            {
                throw new OutOfMemoryException("sodium_malloc could not allocate guarded memory");
            }

            new Span<byte>(_guarded, length).Clear();
        }
        else
        {
            _pinned = GC.AllocateArray<byte>(length, pinned: true);
        }
    }

    /// <summary>Allocates a zero-filled secret buffer.</summary>
    public static SecretBuffer Allocate(int length, SecretMemoryKind kind = SecretMemoryKind.Pinned) => new(length, kind);

    /// <summary>Copies secret bytes into a new buffer. The caller still owns (and should zero) the source.</summary>
    public static SecretBuffer CopyFrom(ReadOnlySpan<byte> source, SecretMemoryKind kind = SecretMemoryKind.Pinned)
    {
        var b = new SecretBuffer(source.Length, kind);
        source.CopyTo(b.Span);
        return b;
    }

    public int Length => _length;

    public SecretMemoryKind Kind { get; }

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>The secret bytes. Do not keep the span beyond the buffer's lifetime.</summary>
    public Span<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            return _guarded is not null ? new Span<byte>(_guarded, _length) : _pinned.AsSpan();
        }
    }

    public ReadOnlySpan<byte> ReadOnlySpan => Span;

    /// <summary>Constant-time comparison with another secret.</summary>
    public bool FixedTimeEquals(ReadOnlySpan<byte> other) => CryptographicOperations.FixedTimeEquals(Span, other);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_guarded is not null)
        {
            // sodium_free zeroes before unmapping.
            Sodium.sodium_free(_guarded);
            _guarded = null;
        }
        else if (_pinned is not null)
        {
            CryptographicOperations.ZeroMemory(_pinned);
            _pinned = null;
        }

        GC.SuppressFinalize(this);
    }

    ~SecretBuffer()
    {
        // Last resort for a forgotten Dispose: still zero the memory.
        if (_guarded is not null)
        {
            Sodium.sodium_free(_guarded);
        }
        else if (_pinned is not null)
        {
            CryptographicOperations.ZeroMemory(_pinned);
        }
    }

    public override string ToString() => $"SecretBuffer({_length} bytes)";
}
