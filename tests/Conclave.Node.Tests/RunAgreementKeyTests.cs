using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Protocol;

namespace Conclave.Node.Tests;

/// <summary>
/// Per-run ephemeral agreement keys (<see cref="RunAgreementKey"/>, docs/ROTATION.md "Forward secrecy of relayed
/// shares"): an announcement verifies only for its own node, run and key under the node's pinned identity key; sealed
/// messages open only between the two run keys they were sealed between, and not at all once a key is erased.
/// </summary>
public sealed class RunAgreementKeyTests
{
    private static readonly byte[] Run = TestSeed.Bytes(32, "run a");
    private static readonly byte[] OtherRun = TestSeed.Bytes(32, "run b");

    private static ClusterManifest Manifest(params NodeIdentity[] nodes) => new()
    {
        CoordinatorIdentityKey = new string('0', 64),
        Nodes = [.. nodes.Select(n => new ClusterNode
        {
            Id = n.NodeId,
            Address = $"127.0.0.1:{7100 + n.NodeId}",
            IdentityKey = Convert.ToHexStringLower(n.IdentityPublicKey.Span),
            AgreementKey = Convert.ToHexStringLower(n.AgreementPublicKey),
            AgreementKeySignature = Convert.ToHexStringLower(n.AgreementKeySignature),
        })],
    };

    private static string Refusal(byte[] announcement, ClusterManifest manifest, uint sender, byte[] run, string keyId) =>
        Assert.Throws<ProtocolException>(() => RunAgreementKey.VerifyAnnouncement(announcement, manifest, sender, run, keyId)).Message;

    [Fact]
    public void AnAnnouncementVerifiesForItsNodeRunAndKeyOnly()
    {
        using NodeIdentity two = NodeIdentity.Generate(2), three = NodeIdentity.Generate(3);
        ClusterManifest manifest = Manifest(two, three);
        using RunAgreementKey key = RunAgreementKey.Generate(two, Run, "k1");
        Assert.Equal(key.PublicKey, RunAgreementKey.VerifyAnnouncement(key.Announcement, manifest, 2, Run, "k1"));

        // Foreign run, foreign key, another sender.
        Assert.Equal("node 2's run agreement key is bound to another run", Refusal(key.Announcement, manifest, 2, OtherRun, "k1"));
        Assert.Equal("node 2's run agreement key is bound to another key", Refusal(key.Announcement, manifest, 2, Run, "k2"));
        Assert.Equal("node 3's run agreement key is announced for node 2", Refusal(key.Announcement, manifest, 3, Run, "k1"));

        // Tampered public key: the identity key's signature no longer covers it.
        byte[] tampered = (byte[])key.Announcement.Clone();
        int pkOffset = tampered.Length - 4 - 64 - 32;
        tampered[pkOffset] ^= 1;
        Assert.Equal("node 2's run agreement key is not signed by its identity key", Refusal(tampered, manifest, 2, Run, "k1"));

        // Unsigned (an all-zero signature) and signed by another node's identity key.
        byte[] unsigned = (byte[])key.Announcement.Clone();
        Array.Clear(unsigned, unsigned.Length - 64, 64);
        Assert.Equal("node 2's run agreement key is not signed by its identity key", Refusal(unsigned, manifest, 2, Run, "k1"));
        byte[] byThree = new PayloadWriter().U32(2).String("k1").Bytes(Run).Bytes(key.PublicKey)
            .Bytes(three.Sign(RunAgreementKey.Transcript(Run, "k1", 2, key.PublicKey))).ToArray();
        Assert.Equal("node 2's run agreement key is not signed by its identity key", Refusal(byThree, manifest, 2, Run, "k1"));

        // Malformed, and a node outside the manifest.
        Assert.StartsWith("node 2's run agreement key is malformed", Refusal(key.Announcement[..^1], manifest, 2, Run, "k1"), StringComparison.Ordinal);
        using NodeIdentity four = NodeIdentity.Generate(4);
        using RunAgreementKey stranger = RunAgreementKey.Generate(four, Run, "k1");
        Assert.Equal("node 4 is not in the cluster manifest", Refusal(stranger.Announcement, manifest, 4, Run, "k1"));
    }

    [Fact]
    public void SealedMessagesOpenOnlyBetweenTheirRunKeys_AndNotAfterErase()
    {
        using NodeIdentity one = NodeIdentity.Generate(1), two = NodeIdentity.Generate(2);
        using RunAgreementKey a = RunAgreementKey.Generate(one, Run, "k1");
        using RunAgreementKey b = RunAgreementKey.Generate(two, Run, "k1");
        using RunAgreementKey c = RunAgreementKey.Generate(two, Run, "k1");
        byte[] context = [1, 2, 3];
        byte[] secret = TestSeed.Bytes(32, "share");
        byte[] sealedMessage = a.SealTo(b.PublicKey, context, secret);
        using (SecretBuffer opened = b.OpenFrom(a.PublicKey, context, sealedMessage))
        {
            Assert.Equal(secret, opened.ReadOnlySpan.ToArray());
        }

        // Another run key of the same node, another context, or the long-term agreement keys do not open it.
        Assert.Throws<EnvelopeException>(() => c.OpenFrom(a.PublicKey, context, sealedMessage));
        Assert.Throws<EnvelopeException>(() => b.OpenFrom(a.PublicKey, [1, 2, 4], sealedMessage));
        using SecretBuffer staticKey = two.DeriveSharedKey(one.AgreementPublicKey, RunAgreementKey.SealingContext(context, a.PublicKey, b.PublicKey));
        Assert.Throws<EnvelopeException>(() => Envelope.Open(staticKey.ReadOnlySpan, sealedMessage, RunAgreementKey.SealingContext(context, a.PublicKey, b.PublicKey)));

        // Erased: the private half is gone (idempotent), the public half stays readable.
        b.Dispose();
        b.Dispose();
        Assert.True(b.IsErased);
        Assert.Equal(32, b.PublicKey.Length);
        Assert.Throws<ObjectDisposedException>(() => b.OpenFrom(a.PublicKey, context, sealedMessage));
        Assert.DoesNotContain("erased", a.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TheSharedSecretKeptPerPeer_GivesEveryMessageTheKeyX25519ThenHkdfGives_AndIsErasedWithThePrivateKey()
    {
        // The run key computes X25519 with a peer once and reuses it for that peer's next messages (one HKDF per message):
        // every message key must still be X25519.DeriveKey's of the same info, whichever peers came between.
        using NodeIdentity one = NodeIdentity.Generate(1);
        using RunAgreementKey a = RunAgreementKey.Generate(one, Run, "k1");
        (SecretBuffer bPrivate, byte[] bPublic) = Conclave.Crypto.Kdf.X25519.GenerateKeyPair();
        (SecretBuffer cPrivate, byte[] cPublic) = Conclave.Crypto.Kdf.X25519.GenerateKeyPair();
        using (bPrivate)
        using (cPrivate)
        {
            byte[] secret = TestSeed.Bytes(64, "round message");
            foreach ((byte[] peer, SecretBuffer peerPrivate, byte[] context) in new[]
            {
                (bPublic, bPrivate, new byte[] { 1 }), (cPublic, cPrivate, new byte[] { 2 }), (bPublic, bPrivate, new byte[] { 3 }), (bPublic, bPrivate, new byte[] { 4 }),
            })
            {
                byte[] sealedMessage = a.SealTo(peer, context, secret);
                byte[] info = RunAgreementKey.SealingContext(context, a.PublicKey, peer);
                using SecretBuffer k = Conclave.Crypto.Kdf.X25519.DeriveKey(peerPrivate.ReadOnlySpan, a.PublicKey, info);
                using SecretBuffer opened = Envelope.Open(k.ReadOnlySpan, sealedMessage, info);
                Assert.Equal(secret, opened.ReadOnlySpan.ToArray());

                // And the other way: what the peer seals under X25519.DeriveKey opens with the kept secret.
                byte[] back = RunAgreementKey.SealingContext(context, peer, a.PublicKey);
                using SecretBuffer kb = Conclave.Crypto.Kdf.X25519.DeriveKey(peerPrivate.ReadOnlySpan, a.PublicKey, back);
                using SecretBuffer reopened = a.OpenFrom(peer, context, Envelope.Seal(kb.ReadOnlySpan, secret, back));
                Assert.Equal(secret, reopened.ReadOnlySpan.ToArray());
            }

            // A low-order peer key is still refused (all-zero X25519 output, RFC 7748 section 6.1), and not kept.
            Assert.ThrowsAny<Exception>(() => a.SealTo(new byte[32], [5], secret));

            // Erased with the private key: nothing more is sealed or opened, not even to a peer already used.
            a.Dispose();
            Assert.Throws<ObjectDisposedException>(() => a.SealTo(bPublic, [6], secret));
        }
    }
}
