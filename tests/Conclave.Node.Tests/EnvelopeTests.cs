using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Google.Protobuf;

namespace Conclave.Node.Tests;

public sealed class EnvelopeTests
{
    private static Envelope Sample() => new()
    {
        SessionId = ByteString.CopyFrom(new byte[32]),
        Kind = "sign.share",
        Round = 2,
        Sender = 1,
        Recipients = { 0 },
        Payload = ByteString.CopyFrom([1, 2, 3]),
        IssuedAtUnixMs = 1_700_000_000_000,
    };

    [Fact]
    public void EveryFieldIsBoundByTheSignature()
    {
        using NodeIdentity id = NodeIdentity.Generate(1);
        Envelope e = EnvelopeSigner.Sign(Sample(), id);
        Assert.True(EnvelopeSigner.Verify(e, id.IdentityPublicKey.Span));
        var mutations = new List<Action<Envelope>>
        {
            x => x.SessionId = ByteString.CopyFrom(new byte[31].Concat(new byte[] { 1 }).ToArray()),
            x => x.Kind = "sign.shard",
            x => x.Round = 3,
            x => x.Sender = 2,
            x => x.Recipients.Add(3),
            x => x.Payload = ByteString.CopyFrom([1, 2, 4]),
            x => x.IssuedAtUnixMs++,
        };
        foreach (Action<Envelope> m in mutations)
        {
            Envelope copy = e.Clone();
            m(copy);
            Assert.False(EnvelopeSigner.Verify(copy, id.IdentityPublicKey.Span));
        }

        using NodeIdentity other = NodeIdentity.Generate(1);
        Assert.False(EnvelopeSigner.Verify(e, other.IdentityPublicKey.Span));
    }

    /// <summary>
    /// Format 2 (docs/ARCHITECTURE.md "Envelope signatures"): the digest is the SHA-256 of the transcript, fed field by
    /// field, for random envelopes of every shape (empty and 64 kB payloads, no or several recipients, long kinds); the
    /// signature is Ed25519 over "conclave/envelope/v2/sha256:" ‖ digest, checked with BouncyCastle's Ed25519 (RFC 8032),
    /// an implementation other than the libsodium one that made it.
    /// </summary>
    [Fact]
    public void FormatTwo_SignsTheSha256OfTheTranscript_AsAnotherEd25519ImplementationVerifies()
    {
        using NodeIdentity id = NodeIdentity.Generate(3);
        Random random = TestSeed.Random("envelope digest");
        foreach (int size in (int[])[0, 1, 31, 32, 33, 1000, 65_536, random.Next(0, 100_000)])
        {
            byte[] session = new byte[random.Next(0, 2) == 0 ? 32 : random.Next(0, 70)];
            random.NextBytes(session);
            byte[] payload = new byte[size];
            random.NextBytes(payload);
            var e = new Envelope
            {
                SessionId = ByteString.CopyFrom(session),
                Kind = new string('k', random.Next(0, 300)),
                Round = (uint)random.Next(),
                Sender = (uint)random.Next(),
                Payload = ByteString.CopyFrom(payload),
                IssuedAtUnixMs = random.NextInt64(),
            };
            for (int i = random.Next(0, 6); i > 0; i--)
            {
                e.Recipients.Add((uint)random.Next());
            }

            byte[] digest = System.Security.Cryptography.SHA256.HashData(EnvelopeSigner.Transcript(e));
            Assert.Equal(digest, EnvelopeSigner.Digest(e));
            if (session.Length != EnvelopeSigner.SessionIdSizeInBytes)
            {
                continue;
            }

            EnvelopeSigner.Sign(e, id);
            byte[] message = [.. "conclave/envelope/v2/sha256:"u8, .. digest];
            Assert.True(Org.BouncyCastle.Math.EC.Rfc8032.Ed25519.Verify(e.Signature.ToByteArray(), 0, id.IdentityPublicKey.ToArray(), 0, message, 0, message.Length));
            Assert.True(EnvelopeSigner.Verify(e, id.IdentityPublicKey.Span));
        }
    }

    /// <summary>
    /// A format-1 signature (the transcript itself, as envelopes were signed before format 2) verifies only as a recorded
    /// envelope (rotation transcripts, equivocation evidence), never as a live message; format 2 verifies both ways; a
    /// changed field fails both.
    /// </summary>
    [Fact]
    public void FormatOne_VerifiesOnlyAsARecordedEnvelope()
    {
        using NodeIdentity id = NodeIdentity.Generate(1);
        Envelope one = EnvelopeSigner.SignFormatOne(Sample(), id);
        Assert.False(EnvelopeSigner.Verify(one, id.IdentityPublicKey.Span));
        Assert.True(EnvelopeSigner.VerifyRecorded(one, id.IdentityPublicKey.Span));
        Envelope two = EnvelopeSigner.Sign(Sample(), id);
        Assert.NotEqual(one.Signature, two.Signature);
        Assert.True(EnvelopeSigner.VerifyRecorded(two, id.IdentityPublicKey.Span));
        foreach (Envelope signed in (Envelope[])[one, two])
        {
            Envelope changed = signed.Clone();
            changed.Round++;
            Assert.False(EnvelopeSigner.Verify(changed, id.IdentityPublicKey.Span));
            Assert.False(EnvelopeSigner.VerifyRecorded(changed, id.IdentityPublicKey.Span));
        }
    }

    [Fact]
    public void TranscriptsAreUnambiguous()
    {
        // Moving bytes between kind and payload must change the transcript (length prefixes).
        Envelope a = Sample();
        a.Kind = "ab";
        a.Payload = ByteString.CopyFrom("c"u8);
        Envelope b = Sample();
        b.Kind = "a";
        b.Payload = ByteString.CopyFrom("bc"u8);
        Assert.NotEqual(EnvelopeSigner.Transcript(a), EnvelopeSigner.Transcript(b));
    }

    [Fact]
    public void ReplayGuardRefusesRepeatsAndStaleMessages()
    {
        var clock = new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));
        var guard = new ReplayGuard(TimeSpan.FromSeconds(60), clock);
        byte[] t = System.Security.Cryptography.SHA256.HashData([1, 2, 3]);
        Assert.Equal(ReplayGuard.Verdict.Fresh, guard.Check(t, 1_700_000_000_000));
        Assert.Equal(ReplayGuard.Verdict.Replayed, guard.Check(t, 1_700_000_000_000));
        Assert.Equal(ReplayGuard.Verdict.Expired, guard.Check(System.Security.Cryptography.SHA256.HashData([4]), 1_700_000_000_000 - 61_000));
        Assert.Equal(ReplayGuard.Verdict.FromTheFuture, guard.Check(System.Security.Cryptography.SHA256.HashData([5]), 1_700_000_000_000 + 61_000));
        clock.Now = clock.Now.AddMinutes(5);
        Assert.Equal(ReplayGuard.Verdict.Expired, guard.Check(t, 1_700_000_000_000));
    }

    [Fact]
    public void IdentitySealedUnderKek_RoundTripsAndIsBoundToNodeId()
    {
        using NodeIdentity id = NodeIdentity.Generate(4);
        byte[] kek = new byte[32];
        byte[] sealedId = id.Seal(kek);
        using NodeIdentity back = NodeIdentity.Unseal(4, kek, sealedId);
        Assert.Equal(id.IdentityPublicKey.ToArray(), back.IdentityPublicKey.ToArray());
        Assert.Equal(id.AgreementPublicKey, back.AgreementPublicKey);
        Assert.Throws<Conclave.Crypto.Aead.EnvelopeException>(() => NodeIdentity.Unseal(5, kek, sealedId));
    }

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
