using Conclave.Crypto.Memory;
using Conclave.Storage.Keys;

namespace Conclave.Storage.Tests;

/// <summary>
/// The whole storage suite. Every [Fact] here runs once per engine through the concrete classes below, so SQLite and
/// PostgreSQL are held to the same behaviour.
/// </summary>
public abstract partial class StoreSuite
{
    protected abstract EngineHarness Harness { get; }

    protected static StoreOptions WithPassphrase(string p = "correct horse battery staple") => new() { Kek = EngineHarness.Passphrase(p) };

    protected static byte[] Bytes(int n, byte seed)
    {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++)
        {
            b[i] = unchecked((byte)(seed + i * 7));
        }

        return b;
    }

    protected static NewKey SampleKey(string id, string? name = null) =>
        new(id, name ?? "name-" + id, "ed25519", Bytes(32, (byte)id.Length), 1, 1, new Dictionary<string, string> { ["desk"] = "perps" });

    protected static SecretBuffer Secret(byte seed) => SecretBuffer.CopyFrom(Bytes(32, seed));

    protected static byte[] ReadAll(SecretBuffer b)
    {
        using (b)
        {
            return b.ReadOnlySpan.ToArray();
        }
    }
}

public sealed class SqliteStoreSuite : StoreSuite
{
    protected override EngineHarness Harness { get; } = new SqliteHarness();
}

public sealed class PostgresStoreSuite : StoreSuite
{
    protected override EngineHarness Harness { get; } = new PostgresHarness();
}
