using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Dkls23;

namespace Conclave.Node.Tests;

/// <summary>
/// The payloads of a coalesced DKLs23 online step (<see cref="DklsPresignBatch"/>, issue 15): random items round-trip
/// exactly; every malformed step is a typed refusal of the whole step (<see cref="ProtocolException"/>), never another
/// exception; a reply for another number of items, with an unknown status, or an R of the wrong length is refused; a long
/// refusal reason is cut to the wire limit; the encoder refuses items out of range.
/// </summary>
public sealed class DklsPresignBatchTests
{
    [Fact]
    public void RandomItemsAndOutcomes_RoundTripExactly()
    {
        Random random = TestSeed.Random("dkls presign batch items");
        for (int round = 0; round < 50; round++)
        {
            DklsPresignItem[] items = [.. Enumerable.Range(0, random.Next(1, DklsPresignBatch.MaxItems + 1)).Select(i => new DklsPresignItem(
                TestSeed.Bytes(32, $"session {round}/{i}"), "key-" + random.Next(), random.Next(1, int.MaxValue),
                [.. Enumerable.Range(0, random.Next(1, 6)).Select(_ => (uint)random.Next(1, 255))],
                [.. Enumerable.Range(0, random.Next(0, 4)).Select(_ => (uint)random.Next(0, int.MaxValue))],
                TestSeed.Bytes(16, $"presignature {round}/{i}"), TestSeed.Bytes(32, $"digest {round}/{i}")))];
            IReadOnlyList<DklsPresignItem> back = DklsPresignBatch.DecodeRequest(DklsPresignBatch.EncodeRequest(items));
            Assert.Equal(items.Length, back.Count);
            for (int i = 0; i < items.Length; i++)
            {
                Assert.Equal(items[i].SessionId, back[i].SessionId);
                Assert.Equal(items[i].KeyId, back[i].KeyId);
                Assert.Equal(items[i].KeyVersion, back[i].KeyVersion);
                Assert.Equal(items[i].Signers, back[i].Signers);
                Assert.Equal(items[i].Path, back[i].Path);
                Assert.Equal(items[i].PresignatureId, back[i].PresignatureId);
                Assert.Equal(items[i].Digest, back[i].Digest);
            }

            DklsPresignOutcome[] outcomes = [.. items.Select((_, i) => random.Next(3) == 0
                ? DklsPresignOutcome.Refused($"refused {i}", random.Next(2) == 0 ? null : (uint)random.Next(1, 255))
                : DklsPresignOutcome.Signed(TestSeed.Bytes(33, $"R {round}/{i}"), TestSeed.Bytes(random.Next(1, 257), $"share {round}/{i}")))];
            IReadOnlyList<DklsPresignOutcome> replies = DklsPresignBatch.DecodeReply(DklsPresignBatch.EncodeReply(outcomes), outcomes.Length);
            for (int i = 0; i < outcomes.Length; i++)
            {
                Assert.Equal(outcomes[i].NoncePoint, replies[i].NoncePoint);
                Assert.Equal(outcomes[i].Share, replies[i].Share);
                Assert.Equal(outcomes[i].Refusal, replies[i].Refusal);
                Assert.Equal(outcomes[i].Culprit, replies[i].Culprit);
            }
        }
    }

    public static TheoryData<string> MalformedSteps() =>
    [
        "no items", "too many items", "short session", "version 0", "no signers", "too many signers", "hardened path index", "path too long",
        "short presignature id", "long presignature id", "short digest", "long digest", "trailing bytes", "truncated",
    ];

    [Theory]
    [MemberData(nameof(MalformedSteps))]
    public void AMalformedStep_IsATypedRefusalOfTheWholeStep(string what)
    {
        byte[] session = TestSeed.Bytes(32, "session");
        byte[] id = TestSeed.Bytes(16, "presignature");
        byte[] digest = TestSeed.Bytes(32, "digest");
        PayloadWriter Item(PayloadWriter w, byte[]? s = null, uint version = 1, uint[]? signers = null, uint[]? path = null, byte[]? p = null, byte[]? d = null)
        {
            w.Bytes(s ?? session).String("key").U32(version);
            uint[] set = signers ?? [1, 2];
            w.U32((uint)set.Length);
            foreach (uint n in set)
            {
                w.U32(n);
            }

            w.U32((uint)(path ?? []).Length);
            foreach (uint i in path ?? [])
            {
                w.U32(i);
            }

            return w.Bytes(p ?? id).Bytes(d ?? digest);
        }

        byte[] payload = what switch
        {
            "no items" => new PayloadWriter().U32(0).ToArray(),
            "too many items" => new PayloadWriter().U32(DklsPresignBatch.MaxItems + 1).ToArray(),
            "short session" => Item(new PayloadWriter().U32(1), s: session[..31]).ToArray(),
            "version 0" => Item(new PayloadWriter().U32(1), version: 0).ToArray(),
            "no signers" => Item(new PayloadWriter().U32(1), signers: []).ToArray(),
            "too many signers" => new PayloadWriter().U32(1).Bytes(session).String("key").U32(1).U32(256).ToArray(),
            "hardened path index" => Item(new PayloadWriter().U32(1), path: [0x8000_0000]).ToArray(),
            "path too long" => new PayloadWriter().U32(1).Bytes(session).String("key").U32(1).U32(1).U32(1).U32(256).ToArray(),
            "short presignature id" => Item(new PayloadWriter().U32(1), p: id[..15]).ToArray(),
            "long presignature id" => Item(new PayloadWriter().U32(1), p: [.. id, 0]).ToArray(),
            "short digest" => Item(new PayloadWriter().U32(1), d: digest[..31]).ToArray(),
            "long digest" => Item(new PayloadWriter().U32(1), d: [.. digest, 0]).ToArray(),
            "trailing bytes" => [.. Item(new PayloadWriter().U32(1)).ToArray(), 0],
            "truncated" => Item(new PayloadWriter().U32(2)).ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        Assert.Throws<ProtocolException>(() => DklsPresignBatch.DecodeRequest(payload));
    }

    [Fact]
    public void AMalformedReply_IsRefused_AndALongReasonIsCut()
    {
        byte[] r = TestSeed.Bytes(33, "R");
        byte[] two = DklsPresignBatch.EncodeReply([DklsPresignOutcome.Signed(r, [1]), DklsPresignOutcome.Refused("no")]);
        Assert.Throws<ProtocolException>(() => DklsPresignBatch.DecodeReply(two, 3));
        Assert.Throws<ProtocolException>(() => DklsPresignBatch.DecodeReply(new PayloadWriter().U32(1).U32(7).ToArray(), 1));
        Assert.Throws<ProtocolException>(() => DklsPresignBatch.DecodeReply([.. two, 0], 2));
        Assert.Throws<ProtocolException>(() => DklsPresignBatch.DecodeReply(new PayloadWriter().U32(1).U32(0).Bytes(r[..32]).Bytes([1]).ToArray(), 1));
        Assert.Throws<ProtocolException>(() => DklsPresignBatch.DecodeReply(new PayloadWriter().U32(1).U32(0).Bytes(r).Bytes(new byte[257]).ToArray(), 1));

        DklsPresignOutcome cut = Assert.Single(DklsPresignBatch.DecodeReply(DklsPresignBatch.EncodeReply([DklsPresignOutcome.Refused(new string('x', 2000))]), 1));
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(cut.Refusal!) <= 512);
        Assert.EndsWith("…", cut.Refusal, StringComparison.Ordinal);

        byte[] s = new byte[32], p = new byte[16], d = new byte[32];
        Assert.Throws<ArgumentException>(() => DklsPresignBatch.EncodeRequest([]));
        Assert.Throws<ArgumentException>(() => DklsPresignBatch.EncodeRequest([new DklsPresignItem(new byte[31], "k", 1, [1, 2], [], p, d)]));
        Assert.Throws<ArgumentException>(() => DklsPresignBatch.EncodeRequest([new DklsPresignItem(s, "k", 1, [1, 2], [], new byte[15], d)]));
        Assert.Throws<ArgumentException>(() => DklsPresignBatch.EncodeRequest([new DklsPresignItem(s, "k", 1, [1, 2], [], p, new byte[31])]));
        Assert.Throws<ArgumentException>(() => DklsPresignBatch.EncodeRequest([new DklsPresignItem(s, "k", 0, [1, 2], [], p, d)]));
        Assert.Throws<ArgumentException>(() => DklsPresignBatch.EncodeRequest([new DklsPresignItem(s, "k", 1, [], [], p, d)]));
    }
}
