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
        byte[] t = [1, 2, 3];
        Assert.Equal(ReplayGuard.Verdict.Fresh, guard.Check(t, 1_700_000_000_000));
        Assert.Equal(ReplayGuard.Verdict.Replayed, guard.Check(t, 1_700_000_000_000));
        Assert.Equal(ReplayGuard.Verdict.Expired, guard.Check([4], 1_700_000_000_000 - 61_000));
        Assert.Equal(ReplayGuard.Verdict.FromTheFuture, guard.Check([5], 1_700_000_000_000 + 61_000));
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
