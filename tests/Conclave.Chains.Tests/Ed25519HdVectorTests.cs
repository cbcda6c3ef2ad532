using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Chains.Derivation;
using Conclave.Chains.Solana;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Signing;

namespace Conclave.Chains.Tests;

/// <summary>
/// Conclave's own non-hardened ed25519 derivation (no standard defines one) against a pinned table,
/// tests/vectors/conclave/ed25519-hd.json: a change to the construction moves every derived Solana address, so it must
/// fail here. The table was computed once by the independent JavaScript implementation (tests/interop/checks/ed25519-hd.mjs,
/// written from docs/WALLETS.md) and reproduced byte for byte by the C# code; both are checked against it on every run.
/// </summary>
public sealed class Ed25519HdVectorTests
{
    private const int ExpectedRows = 9;

    private sealed record Row(string Seed, string ChainCode, uint[] Path, string Message, string ParentPublicKey, string[] Tweaks,
        string ChildPublicKey, string ChildChainCode, string Solana, string Signature);

    private static List<Row> Load()
    {
        using JsonDocument d = JsonDocument.Parse(File.ReadAllText(RepoPaths.Vector("conclave/ed25519-hd.json")));
        var rows = new List<Row>();
        foreach (JsonElement v in d.RootElement.GetProperty("vectors").EnumerateArray())
        {
            rows.Add(new Row(
                v.GetProperty("seed").GetString()!,
                v.GetProperty("chainCode").GetString()!,
                [.. v.GetProperty("path").EnumerateArray().Select(e => e.GetUInt32())],
                v.GetProperty("message").GetString()!,
                v.GetProperty("parentPublicKey").GetString()!,
                [.. v.GetProperty("tweaks").EnumerateArray().Select(e => e.GetString()!)],
                v.GetProperty("childPublicKey").GetString()!,
                v.GetProperty("childChainCode").GetString()!,
                v.GetProperty("solana").GetString()!,
                v.GetProperty("signature").GetString()!));
        }

        return rows;
    }

    [Fact]
    public void PinnedTable_EveryRow_ReproducedByConclave()
    {
        List<Row> rows = Load();
        Assert.Equal(ExpectedRows, rows.Count);
        foreach (Row r in rows)
        {
            byte[] seed = Convert.FromHexString(r.Seed);
            byte[] chainCode = Convert.FromHexString(r.ChainCode);
            byte[] message = Convert.FromHexString(r.Message);

            // Parent public key of the seed (RFC 8032 §5.1.5).
            using (SoftwareSigningKey parent = SignatureSchemes.Ed25519.ImportPrivateKey(seed, KeyExportPolicy.None))
            {
                Assert.Equal(r.ParentPublicKey, Convert.ToHexStringLower(parent.PublicKey.Span));
            }

            // Public derivation, step by step (what a FROST group and POST /derive use): each tweak and the chain codes.
            byte[] a = Convert.FromHexString(r.ParentPublicKey);
            byte[] c = chainCode;
            Ed25519Scalar total = Ed25519Scalar.Zero;
            Assert.Equal(r.Path.Length, r.Tweaks.Length);
            for (int i = 0; i < r.Path.Length; i++)
            {
                (Ed25519Scalar t, byte[] next) = Ed25519HdDerivation.Tweak(a, c, r.Path[i]);
                Assert.Equal(r.Tweaks[i], Convert.ToHexStringLower(t.ToBytes()));
                a = (Ed25519Point.Parse(a) + Ed25519Point.MultiplyGenerator(t)).ToBytes();
                c = next;
                total += t;
            }

            Assert.Equal(r.ChildPublicKey, Convert.ToHexStringLower(a));
            Assert.Equal(r.ChildChainCode, Convert.ToHexStringLower(c));

            // The whole path through Conclave.Chains (the server's derive endpoint) and the Solana address of the child.
            (byte[] pub, byte[] cc, byte[] tweak) = PublicDerivation.Ed25519(Convert.FromHexString(r.ParentPublicKey), chainCode, r.Path);
            Assert.Equal(r.ChildPublicKey, Convert.ToHexStringLower(pub));
            Assert.Equal(r.ChildChainCode, Convert.ToHexStringLower(cc));
            Assert.Equal(Convert.ToHexStringLower(total.ToBytes()), Convert.ToHexStringLower(tweak));
            Assert.Equal(r.Solana, SolanaAddress.FromPublicKey(pub));

            // Child signing from the seed: the exact signature, which is a standard Ed25519 signature under the child key.
            (byte[] sig, byte[] signer) = Ed25519HdDerivation.SignWithChild(seed, chainCode, r.Path, message);
            Assert.Equal(r.ChildPublicKey, Convert.ToHexStringLower(signer));
            Assert.Equal(r.Signature, Convert.ToHexStringLower(sig));
            Assert.True(SignatureSchemes.Ed25519.Verify(signer, message, sig));
        }
    }

    [Fact]
    public void PinnedTable_EveryRow_ReproducedByTheIndependentJavaScript()
    {
        List<Row> rows = Load();
        Assert.Equal(ExpectedRows, rows.Count);
        JsonArray results = NodeInterop.Run("ed25519-hd", rows.Select(r => (object)new { seed = r.Seed, chainCode = r.ChainCode, path = r.Path, message = r.Message }));
        Assert.Equal(rows.Count, results.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            Row r = rows[i];
            JsonNode o = results[i]!;
            Assert.Equal(r.ParentPublicKey, o["parentPublicKey"]!.GetValue<string>());
            Assert.Equal(r.Tweaks, o["tweaks"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray());
            Assert.Equal(r.ChildPublicKey, o["childPublicKey"]!.GetValue<string>());
            Assert.Equal(r.ChildChainCode, o["childChainCode"]!.GetValue<string>());
            Assert.Equal(r.Solana, o["solana"]!.GetValue<string>());
            Assert.Equal(r.Signature, o["signature"]!.GetValue<string>());
            Assert.True(o["verifies"]!.GetValue<bool>());
        }
    }

    [Fact]
    public void PinnedTable_RFC8032Seed_ParentIsTheRfcPublicKey()
    {
        // Anchors the table to a published value: row 8 uses RFC 8032 §7.1 TEST 1's secret key.
        Row last = Load()[^1];
        Assert.Equal("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", last.Seed);
        Assert.Equal("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", last.ParentPublicKey);
    }
}
