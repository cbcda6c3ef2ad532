using System.Numerics;

namespace Conclave.Crypto.Randomness;

/// <summary>The entropy source failed a continuous health test; key generation must stop.</summary>
public sealed class EntropyHealthException : Exception
{
    public EntropyHealthException() : base("entropy health test failed") { Test = "unknown"; }

    public EntropyHealthException(string message) : base(message) { Test = "unknown"; }

    public EntropyHealthException(string message, Exception innerException) : base(message, innerException) { Test = "unknown"; }

    internal EntropyHealthException(string test, string message) : base(message) => Test = test;

    /// <summary>"repetition-count" or "adaptive-proportion".</summary>
    public string Test { get; } = "unknown";
}

/// <summary>
/// Wraps a random source with the continuous health tests of NIST SP 800-90B section 4.4, run on every byte
/// (8-bit samples) that passes through:
/// <list type="bullet">
/// <item>4.4.1 Repetition Count Test: cutoff C = 1 + ⌈−log2(α) / H⌉; the test fails when C identical samples
/// occur in a row (the run length, counting the first of them, reaches C).</item>
/// <item>4.4.2 Adaptive Proportion Test: window W = 512; the test fails when the first sample of a window occurs
/// C times in that window, counting itself (so it recurs C − 1 times), with C = 1 + CRITBINOM(W, 2^−H, 1 − α)
/// as section 4.4.2 defines it (see <see cref="ComputeAptCutoff"/>).</item>
/// </list>
/// The tests see the OS generator's conditioned output, not its raw noise source: they catch a stuck, zeroed or
/// grossly broken generator, not a weak or repeated seed (conditioned output of a bad seed still looks random).
/// Conclave assumes H = 8 bits per byte (the OS generator's conditioned output) and α = 2^−40, the most
/// conservative false-positive rate the standard allows, so a healthy generator essentially never trips
/// while a stuck or heavily biased one fails within one window. A failure is sticky: the source refuses
/// every later request, and the error says which test failed.
/// </summary>
public sealed class HealthCheckedRandomSource : IRandomSource
{
    /// <summary>Assumed min-entropy per 8-bit sample.</summary>
    public const double MinEntropyPerSample = 8.0;

    /// <summary>−log2 of the false-positive probability α.</summary>
    public const int AlphaExponent = 40;

    public const int AdaptiveProportionWindow = 512;

    private static readonly int s_rctCutoff = 1 + (int)Math.Ceiling(AlphaExponent / MinEntropyPerSample);
    private static readonly int s_aptCutoff = ComputeAptCutoff(AdaptiveProportionWindow, AlphaExponent);

    private readonly IRandomSource _inner;
    private readonly Lock _gate = new();
    private bool _failed;
    private string _failedTest = "";

    // Repetition count state.
    private int _lastSample = -1;
    private int _repetitions;

    // Adaptive proportion state.
    private int _aptReference = -1;
    private int _aptCount;
    private int _aptSeen;

    public HealthCheckedRandomSource(IRandomSource inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
    }

    /// <summary>A process-wide health-checked OS source for key generation.</summary>
    public static HealthCheckedRandomSource System { get; } = new(SystemRandomSource.Instance);

    public static int RepetitionCountCutoff => s_rctCutoff;

    public static int AdaptiveProportionCutoff => s_aptCutoff;

    public bool HasFailed
    {
        get
        {
            lock (_gate)
            {
                return _failed;
            }
        }
    }

    public void Fill(Span<byte> destination)
    {
        lock (_gate)
        {
            ThrowIfFailed();
            _inner.Fill(destination);
            foreach (byte b in destination)
            {
                if (!Observe(b))
                {
                    destination.Clear();
                    ThrowIfFailed();
                }
            }
        }
    }

    private void ThrowIfFailed()
    {
        if (_failed)
        {
            throw new EntropyHealthException(_failedTest,
                $"entropy source failed the SP 800-90B {_failedTest} health test; key generation is stopped until the process restarts with a healthy source");
        }
    }

    private bool Observe(byte sample)
    {
        // 4.4.1 Repetition Count Test.
        if (sample == _lastSample)
        {
            _repetitions++;
            if (_repetitions >= s_rctCutoff)
            {
                return Fail("repetition-count");
            }
        }
        else
        {
            _lastSample = sample;
            _repetitions = 1;
        }

        // 4.4.2 Adaptive Proportion Test.
        if (_aptSeen == 0)
        {
            _aptReference = sample;
            _aptCount = 1;
            _aptSeen = 1;
            return true;
        }

        if (sample == _aptReference)
        {
            _aptCount++;
            if (_aptCount >= s_aptCutoff)
            {
                return Fail("adaptive-proportion");
            }
        }

        _aptSeen++;
        if (_aptSeen == AdaptiveProportionWindow)
        {
            _aptSeen = 0;
        }

        return true;
    }

    private bool Fail(string test)
    {
        _failed = true;
        _failedTest = test;
        return false;
    }

    /// <summary>
    /// The APT cutoff for 8-bit samples with H = 8 (p = 1/256), exactly as SP 800-90B section 4.4.2 defines it:
    /// C = 1 + CRITBINOM(W, 2^−H, 1 − α), where CRITBINOM gives the smallest k with P(Binomial(W, p) ≤ k) ≥ 1 − α.
    /// </summary>
    internal static int ComputeAptCutoff(int window, int alphaExponent)
    {
        // Exact binomial tail with BigInteger arithmetic (scaled by 256^W) to avoid floating-point underflow.
        BigInteger denominator = BigInteger.Pow(256, window);
        BigInteger alphaScaled = denominator >> alphaExponent;
        BigInteger tailAbove = 0; // P(X > k), scaled
        for (int k = window; k >= 0; k--)
        {
            if (tailAbove > alphaScaled)
            {
                return 1 + k + 1;
            }

            tailAbove += Binomial(window, k) * BigInteger.Pow(255, window - k);
        }

        return 1;
    }

    private static BigInteger Binomial(int n, int k)
    {
        BigInteger r = 1;
        for (int i = 1; i <= k; i++)
        {
            r = r * (n - k + i) / i;
        }

        return r;
    }
}
