using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23.Ot;

/// <summary>
/// Base oblivious transfer: Endemic OT of Masny and Rindal (ePrint 2019/706, section 4, "OT from key agreement" with
/// the random-oracle "two-message" instantiation), over secp256k1 with Diffie–Hellman as the key agreement.
/// <list type="number">
/// <item>Receiver, choice c_k: sk_k random, pk_k = sk_k·G; a random point r_{1−c} = H₁(ctx, k, random bytes) whose
/// discrete log nobody knows; r_c = pk_k − H₂(ctx, k, r_{1−c}). Sends (r_0, r_1) for every k.</item>
/// <item>Sender: S = s·G once; m_b = r_b + H₂(ctx, k, r_{1−b}); seed^b_k = KDF(ctx, k, b, s·m_b). Sends S.</item>
/// <item>Receiver: seed^{c}_k = KDF(ctx, k, c, sk_k·S).</item>
/// </list>
/// H₁ and H₂ map to points by try-and-increment: x = SHA-256(tag ‖ ctx ‖ k ‖ input ‖ counter), the first x that is
/// the x coordinate of a curve point gives the point with even y (about two tries on average; the inputs are public,
/// so the variable number of tries leaks nothing secret). Secret-scalar multiplications go through libsecp256k1's
/// constant-time ECDH, whose output (SHA-256 of the compressed shared point) is the KDF input. The receiver places
/// r_0 and r_1 by a masked swap, without a branch on its choice bit.
/// </summary>
internal static class EndemicOt
{
    /// <summary>κ: base OTs per direction and pair (computational security 128 bits).</summary>
    internal const int Count = 128;

    internal const int SeedSize = 32;

    internal const int PairSize = 66;

    internal const int ReceiverMessageSize = Count * PairSize;

    /// <summary>Receiver, step 1: (r_0, r_1) per choice bit; the sk_k go to <paramref name="secretKeys"/> (Count × 32 bytes).</summary>
    internal static byte[] ReceiverMessage(ReadOnlySpan<byte> ctx, ReadOnlySpan<byte> choiceBits, IRandomSource random, Span<byte> secretKeys)
    {
        byte[] msg = new byte[ReceiverMessageSize];
        Span<byte> rnd = stackalloc byte[32];
        Span<byte> x = stackalloc byte[33];
        Span<byte> y = stackalloc byte[33];
        for (int k = 0; k < Count; k++)
        {
            var sk = Secp256k1Scalar.Random(random);
            sk.WriteTo(secretKeys.Slice(k * 32, 32));
            Secp256k1Point pk = Secp256k1Point.MultiplyGenerator(sk);
            random.Fill(rnd);
            Secp256k1Point other = HashToPoint("base-ot/random-point", ctx, k, rnd);
            Secp256k1Point chosen = pk - HashToPoint("base-ot/h2", ctx, k, other.ToCompressed());
            if (chosen.IsIdentity)
            {
                // Probability 2^-256; a fresh key would do, but refusing is simpler and never observed.
                throw new CryptographicException("base OT produced the identity; retry");
            }

            other.WriteCompressed(x);
            chosen.WriteCompressed(y);
            byte mask = unchecked((byte)(0 - ((choiceBits[k >> 3] >> (k & 7)) & 1)));
            Span<byte> slot = msg.AsSpan(k * PairSize, PairSize);
            for (int b = 0; b < 33; b++)
            {
                byte diff = (byte)((x[b] ^ y[b]) & mask);
                slot[b] = (byte)(y[b] ^ diff);        // c = 0: r_0 = chosen; c = 1: r_0 = other
                slot[33 + b] = (byte)(x[b] ^ diff);   // c = 0: r_1 = other;  c = 1: r_1 = chosen
            }
        }

        CryptographicOperations.ZeroMemory(rnd);
        return msg;
    }

    /// <summary>Sender, step 2: the 128 seed pairs from the receiver's message and the sender's secret s.</summary>
    internal static void SenderSeeds(ReadOnlySpan<byte> ctx, Secp256k1Scalar s, byte[] receiverMessage, Identifier receiver, Span<byte> seeds0, Span<byte> seeds1)
    {
        if (receiverMessage.Length != ReceiverMessageSize)
        {
            throw DklsErrors.Malformed(receiver, "baseOt.receiverMessage", $"length {receiverMessage.Length}, expected {ReceiverMessageSize}");
        }

        Span<byte> sk = stackalloc byte[32];
        s.WriteTo(sk);
        try
        {
            for (int k = 0; k < Count; k++)
            {
                ReadOnlySpan<byte> e0 = receiverMessage.AsSpan(k * PairSize, 33), e1 = receiverMessage.AsSpan((k * PairSize) + 33, 33);
                if (!Secp256k1Point.TryParse(e0, out Secp256k1Point r0) || !Secp256k1Point.TryParse(e1, out Secp256k1Point r1))
                {
                    throw DklsErrors.Malformed(receiver, $"baseOt.r[{k}]", "not a compressed point on secp256k1");
                }

                Secp256k1Point m0 = r0 + HashToPoint("base-ot/h2", ctx, k, e1);
                Secp256k1Point m1 = r1 + HashToPoint("base-ot/h2", ctx, k, e0);
                if (m0.IsIdentity || m1.IsIdentity)
                {
                    throw DklsErrors.Malformed(receiver, $"baseOt.r[{k}]", "gives the point at infinity");
                }

                Kdf(ctx, k, 0, sk, m0, seeds0.Slice(k * SeedSize, SeedSize));
                Kdf(ctx, k, 1, sk, m1, seeds1.Slice(k * SeedSize, SeedSize));
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(sk);
        }
    }

    /// <summary>Receiver, step 3: seed^{c_k}_k from the sender's point S.</summary>
    internal static void ReceiverSeeds(ReadOnlySpan<byte> ctx, ReadOnlySpan<byte> choiceBits, ReadOnlySpan<byte> secretKeys, Secp256k1Point senderPoint, Span<byte> seeds)
    {
        for (int k = 0; k < Count; k++)
        {
            int c = (choiceBits[k >> 3] >> (k & 7)) & 1;
            Kdf(ctx, k, c, secretKeys.Slice(k * 32, 32), senderPoint, seeds.Slice(k * SeedSize, SeedSize));
        }
    }

    private static void Kdf(ReadOnlySpan<byte> ctx, int k, int b, ReadOnlySpan<byte> secret, Secp256k1Point peer, Span<byte> seed)
    {
        using SecretBuffer shared = EcdsaSecp256k1.Ecdh(secret, peer);
        using var h = new DklsHash("base-ot/key");
        h.Add(ctx).Add(k).Add(b).Add(shared.ReadOnlySpan).Finish(seed);
    }

    /// <summary>Try-and-increment hash to a curve point (public inputs only).</summary>
    internal static Secp256k1Point HashToPoint(string tag, ReadOnlySpan<byte> ctx, int k, ReadOnlySpan<byte> input)
    {
        Span<byte> enc = stackalloc byte[33];
        enc[0] = 0x02;
        for (int counter = 0; counter < 256; counter++)
        {
            using var h = new DklsHash(tag);
            h.Add(ctx).Add(k).Add(input).Add(counter).Finish(enc[1..]);
            if (Secp256k1Point.TryParse(enc, out Secp256k1Point p))
            {
                return p;
            }
        }

        throw new CryptographicException("hash to curve found no point in 256 tries (probability 2^-256)");
    }
}
