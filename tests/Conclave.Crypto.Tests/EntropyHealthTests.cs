using Conclave.Crypto.Randomness;
using Conclave.Crypto.Signing;

namespace Conclave.Crypto.Tests;

public sealed class EntropyHealthTests
{
    private sealed class StuckSource(byte value) : IRandomSource
    {
        public void Fill(Span<byte> destination) => destination.Fill(value);
    }

    /// <summary>Emits a biased stream: the byte 0x42 every 16th sample, otherwise distinct counter bytes.</summary>
    private sealed class BiasedSource : IRandomSource
    {
        private int _i;

        public void Fill(Span<byte> destination)
        {
            for (int k = 0; k < destination.Length; k++, _i++)
            {
                destination[k] = _i % 8 == 0 ? (byte)0x42 : (byte)(_i * 37 % 251);
            }
        }
    }

    [Fact]
    public void Cutoffs_FollowSp800_90B()
    {
        // RCT: C = 1 + ceil(40 / 8) = 6. APT (W = 512, H = 8, alpha = 2^-40) lies well above the alpha = 2^-20 table value (13).
        Assert.Equal(6, HealthCheckedRandomSource.RepetitionCountCutoff);
        Assert.InRange(HealthCheckedRandomSource.AdaptiveProportionCutoff, 14, 40);
        Assert.Equal(13, HealthCheckedRandomSource.ComputeAptCutoff(512, 20));
    }

    [Fact]
    public void StuckSource_FailsRepetitionCountTest_AndStopsKeyGeneration()
    {
        var source = new HealthCheckedRandomSource(new StuckSource(7));
        var e = Assert.Throws<EntropyHealthException>(() => SignatureSchemes.Ed25519.GenerateKey(random: source));
        Assert.Equal("repetition-count", e.Test);
        Assert.True(source.HasFailed);
        // Sticky: later requests fail too, even for one byte.
        Assert.Throws<EntropyHealthException>(() => source.Fill(new byte[1]));
    }

    [Fact]
    public void BiasedSource_FailsAdaptiveProportionTest()
    {
        var source = new HealthCheckedRandomSource(new BiasedSource());
        var e = Assert.Throws<EntropyHealthException>(() => source.Fill(new byte[4096]));
        Assert.Equal("adaptive-proportion", e.Test);
    }

    [Fact]
    public void HealthySource_PassesMegabytes()
    {
        var source = new HealthCheckedRandomSource(SystemRandomSource.Instance);
        byte[] buf = new byte[64 * 1024];
        for (int i = 0; i < 32; i++)
        {
            source.Fill(buf);
        }

        Assert.False(source.HasFailed);
    }
}
