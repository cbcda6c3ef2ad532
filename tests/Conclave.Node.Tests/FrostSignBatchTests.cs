using Conclave.Node.Frost;
using Conclave.Node.Protocol;

namespace Conclave.Node.Tests;

/// <summary>
/// The payloads of a coalesced FROST sign step (<see cref="FrostSignBatch"/>, issue 18): random items round-trip exactly;
/// every malformed step is a typed refusal of the whole step (<see cref="ProtocolException"/>), never another
/// exception; a reply for another number of items, or with an unknown status, is refused; a long refusal reason is cut
/// to the wire limit.
/// </summary>
public sealed class FrostSignBatchTests
{
    [Fact]
    public void RandomItemsAndOutcomes_RoundTripExactly()
    {
        Random random = TestSeed.Random("sign batch items");
        for (int round = 0; round < 50; round++)
        {
            FrostSignItem[] items = [.. Enumerable.Range(0, random.Next(1, FrostSignBatch.MaxItems + 1)).Select(i => new FrostSignItem(
                TestSeed.Bytes(32, $"session {round}/{i}"), "key-" + random.Next(), TestSeed.Bytes(16, $"nonce {round}/{i}"),
                TestSeed.Bytes(random.Next(0, 300), $"package {round}/{i}"),
                [.. Enumerable.Range(0, random.Next(0, 4)).Select(_ => (uint)random.Next(0, int.MaxValue))], random.Next(1, int.MaxValue)))];
            IReadOnlyList<FrostSignItem> back = FrostSignBatch.DecodeRequest(FrostSignBatch.EncodeRequest(items));
            Assert.Equal(items.Length, back.Count);
            for (int i = 0; i < items.Length; i++)
            {
                Assert.Equal(items[i].SessionId, back[i].SessionId);
                Assert.Equal(items[i].KeyId, back[i].KeyId);
                Assert.Equal(items[i].NonceId, back[i].NonceId);
                Assert.Equal(items[i].SigningPackage, back[i].SigningPackage);
                Assert.Equal(items[i].Path, back[i].Path);
                Assert.Equal(items[i].KeyVersion, back[i].KeyVersion);
            }

            FrostSignOutcome[] outcomes = [.. items.Select((_, i) => random.Next(3) == 0
                ? FrostSignOutcome.Refused($"refused {i}", random.Next(2) == 0 ? null : (uint)random.Next(1, 255))
                : FrostSignOutcome.Signed(TestSeed.Bytes(32, $"share {round}/{i}")))];
            IReadOnlyList<FrostSignOutcome> replies = FrostSignBatch.DecodeReply(FrostSignBatch.EncodeReply(outcomes), outcomes.Length);
            for (int i = 0; i < outcomes.Length; i++)
            {
                Assert.Equal(outcomes[i].Share, replies[i].Share);
                Assert.Equal(outcomes[i].Refusal, replies[i].Refusal);
                Assert.Equal(outcomes[i].Culprit, replies[i].Culprit);
            }
        }
    }

    public static TheoryData<string> MalformedSteps() =>
    [
        "no items", "too many items", "short session", "short nonce id", "hardened path index", "path too long", "version 0", "trailing bytes", "truncated",
    ];

    [Theory]
    [MemberData(nameof(MalformedSteps))]
    public void AMalformedStep_IsATypedRefusalOfTheWholeStep(string what)
    {
        byte[] session = TestSeed.Bytes(32, "session");
        byte[] nonce = TestSeed.Bytes(16, "nonce");
        PayloadWriter Item(PayloadWriter w, byte[]? s = null, byte[]? n = null, uint[]? path = null, uint version = 1)
        {
            w.Bytes(s ?? session).String("key").Bytes(n ?? nonce).Bytes([1, 2, 3]).U32((uint)(path ?? []).Length);
            foreach (uint p in path ?? [])
            {
                w.U32(p);
            }

            return w.U32(version);
        }

        byte[] payload = what switch
        {
            "no items" => new PayloadWriter().U32(0).ToArray(),
            "too many items" => new PayloadWriter().U32(FrostSignBatch.MaxItems + 1).ToArray(),
            "short session" => Item(new PayloadWriter().U32(1), s: session[..31]).ToArray(),
            "short nonce id" => Item(new PayloadWriter().U32(1), n: nonce[..15]).ToArray(),
            "hardened path index" => Item(new PayloadWriter().U32(1), path: [0x8000_0000]).ToArray(),
            "path too long" => new PayloadWriter().U32(1).Bytes(session).String("key").Bytes(nonce).Bytes([1]).U32(256).ToArray(),
            "version 0" => Item(new PayloadWriter().U32(1), version: 0).ToArray(),
            "trailing bytes" => [.. Item(new PayloadWriter().U32(1)).ToArray(), 0],
            "truncated" => Item(new PayloadWriter().U32(2)).ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        Assert.Throws<ProtocolException>(() => FrostSignBatch.DecodeRequest(payload));
    }

    [Fact]
    public void AReplyForAnotherNumberOfItems_OrWithAnUnknownStatus_IsRefused_AndALongReasonIsCut()
    {
        byte[] two = FrostSignBatch.EncodeReply([FrostSignOutcome.Signed([1]), FrostSignOutcome.Refused("no")]);
        Assert.Throws<ProtocolException>(() => FrostSignBatch.DecodeReply(two, 3));
        Assert.Throws<ProtocolException>(() => FrostSignBatch.DecodeReply(new PayloadWriter().U32(1).U32(7).ToArray(), 1));
        Assert.Throws<ProtocolException>(() => FrostSignBatch.DecodeReply([.. two, 0], 2));

        FrostSignOutcome cut = Assert.Single(FrostSignBatch.DecodeReply(FrostSignBatch.EncodeReply([FrostSignOutcome.Refused(new string('x', 2000))]), 1));
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(cut.Refusal!) <= 512);
        Assert.EndsWith("…", cut.Refusal, StringComparison.Ordinal);

        Assert.Throws<ArgumentException>(() => FrostSignBatch.EncodeRequest([]));
        Assert.Throws<ArgumentException>(() => FrostSignBatch.EncodeRequest([new FrostSignItem(new byte[31], "k", new byte[16], [], [], 1)]));
    }
}
