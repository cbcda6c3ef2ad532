using Conclave.Crypto.Memory;
using Conclave.Storage.Keys;
using Conclave.Storage.Nonces;

namespace Conclave.Storage.Tests;

/// <summary>What the signer nodes rely on: nonces consumed at issue, versioned creation, erasing an old version's share.</summary>
public abstract partial class StoreSuite
{
    [Fact]
    public async Task Nonces_issued_consumed_can_never_be_consumed_again()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        await store.Nonces.IssueConsumedAsync([.. Enumerable.Range(1, 3).Select(i => new NonceIssue(NonceId(100 + i), "k", NonceKind.Nonce))]);
        Assert.Equal(NonceStatus.Consumed, await store.Nonces.GetStatusAsync(NonceId(101)));
        Assert.False(await store.Nonces.TryConsumeAsync(NonceId(101)));
        Assert.Equal(0, await store.Nonces.CountAvailableAsync("k", NonceKind.Nonce));
        // Material is refused: a nonce consumed at issue lives in memory only.
        using SecretBuffer m = Secret(1);
        await Assert.ThrowsAsync<ArgumentException>(() => store.Nonces.IssueConsumedAsync([new NonceIssue(NonceId(200), "k", NonceKind.Nonce, m)]));
        // Duplicates fail as for IssueAsync.
        Assert.Equal(StorageErrorKind.Duplicate, (await Assert.ThrowsAsync<StorageException>(() =>
            store.Nonces.IssueConsumedAsync([new NonceIssue(NonceId(101), "k", NonceKind.Nonce)]))).Kind);
    }

    [Fact]
    public async Task Key_created_at_a_later_version_and_old_material_destroyed()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        using SecretBuffer v3 = Secret(3);
        KeyRecord k = await store.Keys.CreateAsync(SampleKey("joined"));
        Assert.Equal(1, k.Version);
        KeyRecord joined = await store.Keys.CreateAsync(SampleKey("joined-late") with { InitialVersion = 3 }, v3);
        Assert.Equal(3, joined.Version);
        using (SecretBuffer opened = await store.Keys.OpenMaterialAsync("joined-late"))
        {
            Assert.True(opened.FixedTimeEquals(v3.ReadOnlySpan));
        }

        Assert.Equal(StorageErrorKind.InvalidArgument, (await Assert.ThrowsAsync<StorageException>(() =>
            store.Keys.CreateAsync(SampleKey("bad") with { InitialVersion = 0 }))).Kind);

        using SecretBuffer s1 = Secret(4);
        using SecretBuffer s2 = Secret(5);
        await store.Keys.CreateAsync(SampleKey("refreshed"), s1);
        await store.Keys.RotateAsync("refreshed", 1, Bytes(33, 9), s2);
        Assert.True(await store.Keys.DestroyMaterialAsync("refreshed", 1));
        Assert.False(await store.Keys.DestroyMaterialAsync("refreshed", 1));
        await Assert.ThrowsAsync<StorageException>(() => store.Keys.OpenMaterialAsync("refreshed", 1));
        using SecretBuffer current = await store.Keys.OpenMaterialAsync("refreshed");
        Assert.True(current.FixedTimeEquals(s2.ReadOnlySpan));
        Assert.Equal(2, (await store.Keys.GetVersionsAsync("refreshed")).Count);
    }

    /// <summary>
    /// A version's material replaced in place (a DKLs23 share after a ban, docs/DKLS23.md "Bans"): the same version then
    /// opens to the new material, the other version keeps its own, the key's version and public key do not move, and a
    /// version without material (destroyed, or none) is not replaced.
    /// </summary>
    [Fact]
    public async Task Key_material_replaced_in_place_opens_new_and_other_versions_are_untouched()
    {
        await using TestLocation loc = await Harness.NewLocationAsync();
        await using IConclaveStore store = await loc.OpenAsync(WithPassphrase());
        using SecretBuffer s1 = Secret(11);
        using SecretBuffer s2 = Secret(12);
        using SecretBuffer replacement = Secret(13);
        await store.Keys.CreateAsync(SampleKey("replaced"), s1);
        KeyRecord rotated = await store.Keys.RotateAsync("replaced", 1, Bytes(33, 7), s2);
        Assert.True(await store.Keys.ReplaceMaterialAsync("replaced", 2, replacement));
        using (SecretBuffer opened = await store.Keys.OpenMaterialAsync("replaced", 2))
        {
            Assert.True(opened.FixedTimeEquals(replacement.ReadOnlySpan));
        }

        using (SecretBuffer old = await store.Keys.OpenMaterialAsync("replaced", 1))
        {
            Assert.True(old.FixedTimeEquals(s1.ReadOnlySpan));
        }

        KeyRecord after = (await store.Keys.GetAsync("replaced"))!;
        Assert.Equal((rotated.Version, Convert.ToHexString(rotated.PublicKey)), (after.Version, Convert.ToHexString(after.PublicKey)));
        Assert.True(await store.Keys.DestroyMaterialAsync("replaced", 1));
        Assert.False(await store.Keys.ReplaceMaterialAsync("replaced", 1, replacement));
        Assert.False(await store.Keys.ReplaceMaterialAsync("replaced", 3, replacement));
        Assert.False(await store.Keys.ReplaceMaterialAsync("no-such-key", 1, replacement));
        await Assert.ThrowsAsync<StorageException>(() => store.Keys.OpenMaterialAsync("replaced", 1));
    }
}
