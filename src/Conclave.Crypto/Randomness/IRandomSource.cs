using System.Security.Cryptography;

namespace Conclave.Crypto.Randomness;

/// <summary>
/// The one source of randomness in Conclave. Production code uses <see cref="SystemRandomSource.Instance"/>
/// (the OS generator through <see cref="RandomNumberGenerator"/>), key generation wraps it in a
/// <see cref="HealthCheckedRandomSource"/>, and tests inject a deterministic source to replay vectors.
/// </summary>
public interface IRandomSource
{
    /// <summary>Fills <paramref name="destination"/> with random bytes.</summary>
    void Fill(Span<byte> destination);
}

/// <summary>The operating system's cryptographic generator.</summary>
public sealed class SystemRandomSource : IRandomSource
{
    private SystemRandomSource() { }

    public static SystemRandomSource Instance { get; } = new();

    public void Fill(Span<byte> destination) => RandomNumberGenerator.Fill(destination);
}
