using System.Globalization;
using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Server.Threshold.Engine;
using Conclave.Server.Coordinator;
using Conclave.Storage;
using Conclave.Storage.Keys;
using Conclave.Threshold.Frost;

namespace Conclave.Cli.Bench;

/// <summary>
/// How Conclave scales with the number of registered keys (issue 18): for 10, 1,000 and 100,000 frost-secp256k1 keys in
/// a SQLite store of their own, the cost of finding a key by name in the store (what every request does first), of
/// reading its sealed public package, of finding it in the coordinator's registry, the registry's memory per key, the
/// store's bytes per key; start-up as it is (the server registers no key when it starts: opening the store) and as it was
/// before issue 18 (every key read, checked and registered: the preload, measured for comparison); the first use of a key
/// after start (found by name, its sealed package read and checked, registered: the steps of KeyService.FrostKeyAsync)
/// against a later use (found by name, found in the registry); and reading every key row with its holders (what eviction,
/// the node list and readiness with a node down read from the store).
/// Opt-in (<c>--schemes keys</c>; <c>--key-counts</c> changes the counts): writing 100,000 keys, each its own durable
/// transaction, takes about a minute.
/// </summary>
internal static class KeyCountBench
{
    public const string Family = "keys";

    public static readonly int[] Counts = [10, 1_000, 100_000];

    public static async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        // Only when asked for by name: the default run would spend a minute writing keys.
        if (ctx.Settings.Schemes is null || !ctx.Settings.Schemes.Any(s => s == Family || s.StartsWith(Family + "/", StringComparison.Ordinal)))
        {
            return;
        }

        FrostCiphersuite suite = FrostCiphersuite.Secp256k1Sha256;
        using DealerOutput dealt = TrustedDealer.Generate(suite, 2, 3);
        byte[] package = dealt.PublicKeyPackage.ToBytes();
        byte[] publicKey = dealt.PublicKeyPackage.VerificationKey;
        foreach (int count in ctx.Settings.KeyCounts ?? Counts)
        {
            string id = $"{Family}/frost-secp256k1-{count}";
            if (!ctx.Begin(id))
            {
                continue;
            }

            string dir = Path.Combine(Path.GetTempPath(), "conclave-bench-keys-" + Guid.NewGuid().ToString("N")[..10]);
            Directory.CreateDirectory(dir);
            try
            {
                await MeasureAsync(ctx, id, dir, count, suite, package, publicKey, ct).ConfigureAwait(false);
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static async Task MeasureAsync(BenchContext ctx, string id, string dir, int count, FrostCiphersuite suite, byte[] package, byte[] publicKey, CancellationToken ct)
    {
        // Sealed under a KEK file, as the server's store is.
        var options = new StoreOptions { Kek = Conclave.Storage.Encryption.KeyFileKek.Source(Path.Combine(dir, "kek"), createIfMissing: true) };
        var writing = System.Diagnostics.Stopwatch.StartNew();
        await using (IConclaveStore store = await ConclaveStore.OpenSqliteAsync(dir, options, ct).ConfigureAwait(false))
        {
            for (int i = 0; i < count; i++)
            {
                using SecretBuffer sealedPackage = SecretBuffer.CopyFrom(package);
                await store.Keys.CreateAsync(new NewKey(KeyIdOf(i), NameOf(i), suite.SchemeName, publicKey, 2, 3) { Holders = [1, 2, 3] }, sealedPackage, ct).ConfigureAwait(false);
                if (i % 10_000 == 9_999)
                {
                    ctx.Progress.WriteLine($"     {i + 1:N0} keys written");
                }
            }
        }

        double writeSeconds = writing.Elapsed.TotalSeconds;
        long storeBytes = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

        // Start-up as it is: a fresh process opens the store and registers no key.
        var opening = System.Diagnostics.Stopwatch.StartNew();
        await using (IConclaveStore reopened = await ConclaveStore.OpenSqliteAsync(dir, options, ct).ConfigureAwait(false))
        {
            _ = await reopened.Keys.GetByNameAsync(NameOf(0), ct).ConfigureAwait(false) ?? throw new InvalidOperationException("a key written was not found");
        }

        double openMs = opening.Elapsed.TotalMilliseconds;

        // Start-up as it was before issue 18 (the preload): open the store, list every key, read and check each sealed package, register it.
        var registry = new KeyRegistry<FrostKeyInfo>();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        var loading = System.Diagnostics.Stopwatch.StartNew();
        await using IConclaveStore opened = await ConclaveStore.OpenSqliteAsync(dir, options, ct).ConfigureAwait(false);
        foreach (KeyRecord k in await opened.Keys.ListAsync(ct).ConfigureAwait(false))
        {
            using SecretBuffer stored = await opened.Keys.OpenMaterialAsync(k.Id, k.Version, ct).ConfigureAwait(false);
            registry.Register(new FrostKeyInfo(k.Id, suite, PublicKeyPackage.FromBytes(suite, stored.ReadOnlySpan), k.Version));
        }

        double loadMs = loading.Elapsed.TotalMilliseconds;
        long heapAfter = GC.GetTotalMemory(forceFullCollection: true);
        double bytesPerKey = (heapAfter - heapBefore) / (double)count;

        Latency byName = await ctx.Sampler.SequentialAsync(async () =>
        {
            int i = RandomNumberGenerator.GetInt32(count);
            _ = await opened.Keys.GetByNameAsync(NameOf(i), ct).ConfigureAwait(false) ?? throw new InvalidOperationException("a key written was not found");
        }).ConfigureAwait(false);
        Latency readPackage = await ctx.Sampler.SequentialAsync(async () =>
        {
            int i = RandomNumberGenerator.GetInt32(count);
            using SecretBuffer m = await opened.Keys.OpenMaterialAsync(KeyIdOf(i), 1, ct).ConfigureAwait(false);
        }).ConfigureAwait(false);
        Latency find = ctx.Sampler.Sequential(() => _ = registry.Find(KeyIdOf(RandomNumberGenerator.GetInt32(count))) ?? throw new InvalidOperationException("a key registered was not found"));

        // First use after start: what a request adds for a key not registered yet (KeyService.FrostKeyAsync's steps: the
        // record by name, its sealed package read and checked against it and its recorded holders, registered), against a
        // later use (the record by name, the registration found).
        var lazy = new KeyRegistry<FrostKeyInfo>();
        Latency firstUse = await ctx.Sampler.SequentialAsync(async () =>
        {
            KeyRecord k = await opened.Keys.GetByNameAsync(NameOf(RandomNumberGenerator.GetInt32(count)), ct).ConfigureAwait(false) ?? throw new InvalidOperationException("a key written was not found");
            using SecretBuffer stored = await opened.Keys.OpenMaterialAsync(k.Id, k.Version, ct).ConfigureAwait(false);
            var info = new FrostKeyInfo(k.Id, suite, PublicKeyPackage.FromBytes(suite, stored.ReadOnlySpan), k.Version);
            if (!info.PublicKeyPackage.VerificationKey.AsSpan().SequenceEqual(k.PublicKey) || !info.Nodes.Order().SequenceEqual(k.Holders ?? []))
            {
                throw new InvalidOperationException("a stored package does not match its key record");
            }

            lazy.Register(info);
        }).ConfigureAwait(false);
        Latency laterUse = await ctx.Sampler.SequentialAsync(async () =>
        {
            KeyRecord k = await opened.Keys.GetByNameAsync(NameOf(RandomNumberGenerator.GetInt32(count)), ct).ConfigureAwait(false) ?? throw new InvalidOperationException("a key written was not found");
            _ = registry.Find(k.Id) ?? throw new InvalidOperationException("a key registered was not found");
        }).ConfigureAwait(false);

        // Every key row with its holders: what eviction, the node list and readiness with a node down read (KeyService.Holdings).
        var listing = System.Diagnostics.Stopwatch.StartNew();
        int held = (await opened.Keys.ListAsync(ct).ConfigureAwait(false)).Count(k => k.Holders?.Contains(3u) == true);
        double listMs = listing.Elapsed.TotalMilliseconds;
        if (held != count)
        {
            throw new InvalidOperationException("a key row lost its holders");
        }

        GC.KeepAlive(registry);

        ctx.Add(new BenchRow
        {
            Id = id, Family = Family, Operation = "find by name", Scheme = suite.SchemeName, Shape = count.ToString("N0", CultureInfo.InvariantCulture) + " keys",
            Where = "in-process", Sign = byName, SecurityProfile = "-",
            Note = string.Create(CultureInfo.InvariantCulture,
                $"{count:N0} frost-secp256k1 2-of-3 keys in a SQLite store: find by name p50 {Format.Duration(byName.P50Us)} (the row's latency), read the sealed public package p50 {Format.Duration(readPackage.P50Us)}, coordinator registry lookup p50 {Format.Duration(find.P50Us)}; registry memory {bytesPerKey:N0} B per key; store {storeBytes / (double)count:N0} B per key on disk; start-up (open the store, no key registered) {openMs:N0} ms; preload before issue 18 (list, unseal, check and register every key) {loadMs:N0} ms; first use of a key p50 {Format.Duration(firstUse.P50Us)} (p99 {Format.Duration(firstUse.P99Us)}), later use p50 {Format.Duration(laterUse.P50Us)}; every key row with its holders {listMs:N0} ms; writing them took {writeSeconds:N1} s (one durable transaction each)"),
        });
    }

    private static string KeyIdOf(int i) => "k" + i.ToString("D8", CultureInfo.InvariantCulture);

    private static string NameOf(int i) => "key-" + i.ToString(CultureInfo.InvariantCulture);
}
