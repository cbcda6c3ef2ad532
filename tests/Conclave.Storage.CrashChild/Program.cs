using Conclave.Storage;
using Conclave.Storage.Audit;
using Conclave.Storage.Nonces;

// Usage: CrashChild sqlite <dataDir> | postgres <connectionString> [<seed>]
// Prints "READY" once the store is open, then, from several workers, repeatedly picks available nonces, consumes
// them and prints "C <hex id>" only after TryConsumeAsync returned true (the consumption is durable by then),
// then appends an audit entry for it. The parent kills this process at random moments. The workers' choices derive from
// <seed> (the parent passes one derived from the test run's seed, so a failing run can be replayed).
if (args.Length is not (2 or 3) || (args.Length == 3 && !int.TryParse(args[2], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out _)))
{
    Console.Error.WriteLine("usage: CrashChild sqlite <dataDir> | postgres <connectionString> [<seed>]");
    return 2;
}

int seed = args.Length == 3 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1;

const string KeyId = "crash-key";
IConclaveStore store = args[0] == "sqlite"
    ? await ConclaveStore.OpenSqliteAsync(args[1])
    : await ConclaveStore.OpenPostgresAsync(args[1]);
var output = Console.Out;
var gate = new object();
void Say(string line)
{
    lock (gate)
    {
        output.Write(line + "\n");
        output.Flush();
    }
}

Say("READY");
var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
{
    var rng = new Random(unchecked(seed * 31 + w));
    while (true)
    {
        IReadOnlyList<byte[]> available = await store.Nonces.ListAvailableAsync(KeyId, NonceKind.Nonce, 8);
        if (available.Count == 0)
        {
            Say("EMPTY");
            return;
        }

        byte[] id = available[rng.Next(available.Count)];
        if (await store.Nonces.TryConsumeAsync(id))
        {
            Say("C " + Convert.ToHexStringLower(id));
            await store.Audit.AppendAsync(new AuditEntryInput("crash-child", "consume-nonce", KeyId, null, "allow", Convert.ToHexStringLower(id)));
        }
    }
})).ToArray();
await Task.WhenAll(workers);
await store.DisposeAsync();
return 0;
