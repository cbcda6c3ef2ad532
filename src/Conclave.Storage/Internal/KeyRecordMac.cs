using System.Buffers.Binary;
using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;

namespace Conclave.Storage.Internal;

/// <summary>
/// Integrity of key metadata (issue 14 item 7). Every row of <c>keys</c> carries
/// <c>mac = HMAC-SHA256(macKey, "conclave/key-record/v1" ‖ lp(id) ‖ lp(name) ‖ lp(scheme) ‖ lp(public_key)
/// ‖ u32be threshold ‖ u32be participants ‖ u32be version ‖ lp(state) ‖ lp(labels JSON))</c>, lp = u32be length ‖ bytes.
/// The 32-byte MAC key is random per store and sealed under the KEK in <c>store_secrets</c> (so KEK rotation re-wraps it
/// and a backup carries it). A row whose MAC is missing or wrong is refused with
/// <see cref="StorageErrorKind.IntegrityCheckFailed"/>: nobody with write access to the database alone can change a
/// key's public key, name, scheme, state, threshold, participants, version or labels unnoticed.
/// <para>
/// A row that records its holders (the signer nodes of a threshold key, issue 18: eviction and readiness read them from
/// the store) is sealed as <c>"conclave/key-record/v2" ‖ the same fields ‖ lp(holders)</c>, holders the ascending node
/// ids in decimal separated by commas. Rows without holders keep the v1 encoding, so rows sealed before holders existed
/// still verify, and clearing or changing a row's holders breaks its MAC like any other field.
/// </para>
/// <para>
/// Every write path of a key row calls <see cref="ResealAsync"/> inside its transaction after changing the row (and
/// <see cref="ReadVerifiedAsync"/> before, so a tampered row is never re-sealed). New write paths must do the same.
/// </para>
/// </summary>
internal static class KeyRecordMac
{
    public const string SecretName = "key-record-mac";
    public const int MacSize = 32;
    private static readonly byte[] s_domain = Encoding.ASCII.GetBytes("conclave/key-record/v1");
    private static readonly byte[] s_domainWithHolders = Encoding.ASCII.GetBytes("conclave/key-record/v2");

    /// <summary>The columns the MAC covers, in this order, as every reader selects them.</summary>
    public const string Columns = "id, name, scheme, public_key, threshold, participants, version, state, labels, holders";

    /// <summary>The number of columns in <see cref="Columns"/>.</summary>
    public const int ColumnCount = 10;

    /// <summary>The canonical encoding of the covered fields (<paramref name="holders"/> as stored, null when the row records none).</summary>
    public static byte[] Encode(string id, string name, string scheme, byte[] publicKey, int threshold, int participants, int version, string state, string labels,
        string? holders = null)
    {
        using var ms = new MemoryStream();
        ms.Write(holders is null ? s_domain : s_domainWithHolders);
        Lp(ms, Encoding.UTF8.GetBytes(id));
        Lp(ms, Encoding.UTF8.GetBytes(name));
        Lp(ms, Encoding.UTF8.GetBytes(scheme));
        Lp(ms, publicKey);
        U32(ms, threshold);
        U32(ms, participants);
        U32(ms, version);
        Lp(ms, Encoding.UTF8.GetBytes(state));
        Lp(ms, Encoding.UTF8.GetBytes(labels));
        if (holders is not null)
        {
            Lp(ms, Encoding.UTF8.GetBytes(holders));
        }

        return ms.ToArray();
    }

    public static byte[] Compute(SecretBuffer macKey, byte[] encoded) => HMACSHA256.HashData(macKey.ReadOnlySpan, encoded);

    public static bool Matches(SecretBuffer macKey, byte[] encoded, byte[]? mac) =>
        mac is { Length: MacSize } && CryptographicOperations.FixedTimeEquals(Compute(macKey, encoded), mac);

    /// <summary>The covered fields of a row read with <see cref="Columns"/> starting at column <paramref name="o"/>.</summary>
    public static byte[] EncodeRow(DbDataReader r, int o) => Encode(r.GetString(o), r.GetString(o + 1), r.GetString(o + 2), (byte[])r.GetValue(o + 3),
        r.GetInt32(o + 4), r.GetInt32(o + 5), r.GetInt32(o + 6), r.GetString(o + 7), r.GetString(o + 8), r.GetStringOrNull(o + 9));

    /// <summary>
    /// Reads the row (locked for update on PostgreSQL) and checks its MAC: the step every write path takes before
    /// changing a row, so an altered row is refused rather than re-sealed. NotFound if there is no such row.
    /// </summary>
    public static async Task ReadVerifiedAsync(SqlStore store, DbConnection c, DbTransaction tx, string id, CancellationToken ct)
    {
        using SecretBuffer key = await store.KeyMacKeyAsync(c, tx, ct).ConfigureAwait(false)
            ?? throw StorageErrors.KeyIntegrity(id);
        using DbCommand cmd = SqlEngine.Command(c, tx, $"SELECT {Columns}, mac FROM keys WHERE id=@id{store.Engine.ForUpdate}");
        cmd.Add("@id", id);
        using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false))
        {
            throw StorageErrors.NotFound("key", id);
        }

        if (!Matches(key, EncodeRow(r, 0), r.GetBytesOrNull(ColumnCount)))
        {
            throw StorageErrors.KeyIntegrity(id);
        }
    }

    /// <summary>Recomputes and stores the MAC of the row as it now stands in this transaction (call after every write).</summary>
    public static async Task ResealAsync(SqlStore store, DbConnection c, DbTransaction tx, string id, CancellationToken ct)
    {
        // The caller ran SqlStore.EnsureKeyMacKeyAsync before its transaction (CreateAsync) or the key exists already.
        using SecretBuffer key = await store.KeyMacKeyAsync(c, tx, ct).ConfigureAwait(false)
            ?? throw StorageErrors.KeyIntegrity(id);
        byte[] encoded;
        using (DbCommand cmd = SqlEngine.Command(c, tx, $"SELECT {Columns} FROM keys WHERE id=@id"))
        {
            cmd.Add("@id", id);
            using DbDataReader r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (!await r.ReadAsync(ct).ConfigureAwait(false))
            {
                throw StorageErrors.NotFound("key", id);
            }

            encoded = EncodeRow(r, 0);
        }

        using DbCommand upd = SqlEngine.Command(c, tx, "UPDATE keys SET mac=@m WHERE id=@id");
        upd.Add("@m", Compute(key, encoded));
        upd.Add("@id", id);
        await upd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Seals a new random MAC key under the KEK (AD names the store and the secret).</summary>
    public static (byte[] Wrapped, byte[] Cipher) NewSealedKey(Encryption.IKeyEncryptionKey kek, string storeId)
    {
        using SecretBuffer fresh = SecretBuffer.Allocate(MacSize);
        SystemRandomSource.Instance.Fill(fresh.Span);
        return SecretSealer.Seal(kek, fresh.ReadOnlySpan, Context(storeId));
    }

    public static byte[] Context(string storeId) => SecretSealer.Context("store-secret", SecretName, storeId);

    private static void Lp(MemoryStream ms, byte[] b)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)b.Length);
        ms.Write(len);
        ms.Write(b);
    }

    private static void U32(MemoryStream ms, int v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, checked((uint)v));
        ms.Write(b);
    }
}
