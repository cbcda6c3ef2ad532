using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Conclave.Storage.Nonces;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// Nonce epochs: how a signer node prunes its nonce ledger without ever letting a pruned id be issued or accepted again
/// (issue 14 item 12; docs/STORAGE.md "Nonce ledger"). Every nonce id starts with the node's current epoch (8 bytes,
/// big-endian), and so does its ledger id; epochs only go up. A new epoch begins at every start and after
/// <see cref="EpochSize"/> ids: its marker row (epoch ‖ zeros, consumed) is made durable first, then every consumed row of
/// earlier epochs is deleted. The marker of the newest epoch is never pruned, so the next start reads it and goes above
/// it even when everything else was pruned. A pruned id belongs to an earlier epoch: no id of that epoch is ever issued
/// again, and none is accepted either, because a node signs only with nonces in its in-memory pool, which holds only ids
/// it issued in this process (the ledger's rows record consumption; they are never the acceptance check).
/// </summary>
public sealed class NonceEpochs : IDisposable
{
    public const int EpochSizeInBytes = 8;

    /// <summary>Bytes of a nonce id: epoch (8 bytes) ‖ 8 random bytes.</summary>
    public const int NonceIdSizeInBytes = 16;
    private const int LedgerIdSizeInBytes = 32;
    private readonly INonceLedger _ledger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private long _issuedInEpoch;

    private NonceEpochs(INonceLedger ledger, long epochSize)
    {
        _ledger = ledger;
        EpochSize = epochSize;
    }

    /// <summary>Ids issued per epoch before the next epoch begins (and the previous ones' rows are pruned).</summary>
    public long EpochSize { get; }

    /// <summary>The epoch new nonce ids carry.</summary>
    public ulong Current { get; private set; }

    /// <summary>Opens the ledger's epochs: begins a new one above every id the ledger holds, and prunes the older ones.</summary>
    public static async Task<NonceEpochs> OpenAsync(INonceLedger ledger, long epochSize = 100_000, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(ledger);
        ArgumentOutOfRangeException.ThrowIfLessThan(epochSize, 1);
        var epochs = new NonceEpochs(ledger, epochSize);
        await epochs.AdvanceAsync(ct).ConfigureAwait(false);
        return epochs;
    }

    /// <summary>
    /// Makes room for <paramref name="count"/> new ids in the current epoch, beginning a new epoch first when this one
    /// is full. Returns the epoch the ids must carry.
    /// </summary>
    public async Task<ulong> ReserveAsync(int count, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_issuedInEpoch + count > EpochSize && _issuedInEpoch > 0)
            {
                await AdvanceCoreAsync(ct).ConfigureAwait(false);
            }

            _issuedInEpoch += count;
            return Current;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>A new nonce id of <paramref name="epoch"/>: epoch (8 bytes) ‖ 8 random bytes.</summary>
    public static byte[] NewNonceId(ulong epoch)
    {
        byte[] id = new byte[NonceIdSizeInBytes];
        BinaryPrimitives.WriteUInt64BigEndian(id, epoch);
        RandomNumberGenerator.Fill(id.AsSpan(EpochSizeInBytes));
        return id;
    }

    /// <summary>The ledger id of a nonce id: its epoch ‖ the first 24 bytes of SHA-256(key id ‖ 0 ‖ nonce id).</summary>
    public static byte[] LedgerId(string keyId, ReadOnlySpan<byte> nonceId)
    {
        byte[] id = new byte[LedgerIdSizeInBytes];
        nonceId[..EpochSizeInBytes].CopyTo(id);
        SHA256.HashData([.. Encoding.UTF8.GetBytes(keyId), 0, .. nonceId]).AsSpan(0, LedgerIdSizeInBytes - EpochSizeInBytes).CopyTo(id.AsSpan(EpochSizeInBytes));
        return id;
    }

    /// <summary>The marker row of an epoch (its lowest id): epoch ‖ zeros.</summary>
    public static byte[] Marker(ulong epoch)
    {
        byte[] id = new byte[LedgerIdSizeInBytes];
        BinaryPrimitives.WriteUInt64BigEndian(id, epoch);
        return id;
    }

    private async Task AdvanceAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await AdvanceCoreAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task AdvanceCoreAsync(CancellationToken ct)
    {
        byte[]? highest = await _ledger.GetHighestIdAsync(ct).ConfigureAwait(false);
        ulong last = highest is { Length: >= EpochSizeInBytes } ? BinaryPrimitives.ReadUInt64BigEndian(highest) : 0;
        ulong next = checked(last + 1);
        // The marker is durable before any id of the epoch exists, and before anything older is pruned.
        await _ledger.IssueConsumedAsync([new NonceIssue(Marker(next), "nonce-epoch", NonceKind.Nonce)], ct).ConfigureAwait(false);
        Current = next;
        _issuedInEpoch = 0;
        _ = await _ledger.PruneConsumedBelowAsync(Marker(next), ct).ConfigureAwait(false);
    }

    public void Dispose() => _gate.Dispose();
}
