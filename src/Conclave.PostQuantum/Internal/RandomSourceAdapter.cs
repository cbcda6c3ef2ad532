using Conclave.Crypto.Randomness;
using Org.BouncyCastle.Crypto.Prng;
using Org.BouncyCastle.Security;

namespace Conclave.PostQuantum.Internal;

/// <summary>
/// Presents a Conclave <see cref="IRandomSource"/> to BouncyCastle as a <see cref="SecureRandom"/>, so every random
/// byte BouncyCastle draws (the ML-DSA <c>rnd</c>, the SLH-DSA <c>opt_rand</c>, key seeds) comes from the one injectable
/// source (CONVENTIONS.md rule 9). Seed material BouncyCastle offers is ignored: the source is never reseeded by the caller.
/// </summary>
internal sealed class RandomSourceAdapter : IRandomGenerator
{
    private readonly IRandomSource _source;

    private RandomSourceAdapter(IRandomSource source) => _source = source;

    internal static SecureRandom Wrap(IRandomSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new SecureRandom(new RandomSourceAdapter(source));
    }

    public void AddSeedMaterial(byte[] seed) { }

    public void AddSeedMaterial(ReadOnlySpan<byte> seed) { }

    public void AddSeedMaterial(long seed) { }

    public void NextBytes(byte[] bytes) => _source.Fill(bytes);

    public void NextBytes(byte[] bytes, int start, int len) => _source.Fill(bytes.AsSpan(start, len));

    public void NextBytes(Span<byte> bytes) => _source.Fill(bytes);
}

/// <summary>
/// Replays a fixed byte string to BouncyCastle once, in order, then refuses further draws. Used to run SLH-DSA key
/// generation (FIPS 205 Algorithm 21) on a stored seed: BouncyCastle draws SK.seed, SK.prf and PK.seed from its random
/// source in that order, so replaying the 3n-byte seed gives slh_keygen_internal(SK.seed, SK.prf, PK.seed).
/// </summary>
internal sealed class ReplaySource : IRandomSource
{
    private readonly byte[] _bytes;
    private int _offset;

    internal ReplaySource(byte[] bytes) => _bytes = bytes;

    public void Fill(Span<byte> destination)
    {
        if (_offset + destination.Length > _bytes.Length)
        {
            throw new InvalidOperationException("the replayed seed is exhausted");
        }

        _bytes.AsSpan(_offset, destination.Length).CopyTo(destination);
        _offset += destination.Length;
    }

    /// <summary>True once exactly every byte was drawn (a check that BouncyCastle drew what FIPS 205 says it draws).</summary>
    internal bool Exhausted => _offset == _bytes.Length;
}
