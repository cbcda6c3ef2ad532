namespace Conclave.Policy.Evaluation;

/// <summary>What has been spent under one velocity counter inside a window: native units, USD and a count.</summary>
public readonly record struct VelocityTotals(decimal Native, decimal Usd, long Count);

/// <summary>
/// Read access to velocity counters. The decision function only reads; an allowed decision lists the
/// <see cref="Reservation"/>s the caller must make atomically (and release if signing fails). Keeping the counters
/// behind this interface is what keeps <see cref="PolicyEvaluator"/> pure.
/// </summary>
public interface IVelocityCounters
{
    /// <summary>Totals of the reservations under <paramref name="counterKey"/> made in (now - window, now].</summary>
    VelocityTotals Read(string counterKey, long windowSeconds, DateTimeOffset now);
}

/// <summary>One amount to add to a counter when the request is allowed, and the limit it must stay within.</summary>
public sealed record Reservation(string CounterKey, long WindowSeconds, decimal Native, decimal Usd, long Count, decimal? MaxNative, decimal? MaxUsd, long? MaxCount);

/// <summary>Counters that hold nothing (every total zero).</summary>
public sealed class EmptyCounters : IVelocityCounters
{
    public static EmptyCounters Instance { get; } = new();

    public VelocityTotals Read(string counterKey, long windowSeconds, DateTimeOffset now) => default;
}
