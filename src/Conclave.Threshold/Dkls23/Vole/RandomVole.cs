using System.Security.Cryptography;
using Conclave.Crypto.Randomness;
using Conclave.Crypto.Secp256k1;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Dkls23.Ot;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23.Vole;

/// <summary>
/// Two-party random vector OLE from correlated OT: DKLs23 (ePrint 2023/765) Protocol 5.2, with ℓ = 2 inputs on
/// Alice's side and ρ = 1 check element, over <see cref="SoftSpokenOt"/>. Outputs: Alice c ∈ Z_q^ℓ, Bob a random
/// b ∈ Z_q and d ∈ Z_q^ℓ with c + d = b·a.
/// <list type="number">
/// <item>Bob samples β ∈ {0,1}^ξ, b = ⟨g, β⟩ (g_j = 2^j for j &lt; 256, g_j = H("gadget", j) after), and sends the
/// OT-extension message with choice bits β.</item>
/// <item>Alice checks the extension, takes the random-OT outputs (v^0_j, v^1_j) ∈ (Z_q^{ℓ+1})², samples the check
/// element â, sets α = (a_1, …, a_ℓ, â) and sends τ_j = v^0_j − v^1_j + α. Her shares: z^A_j = −v^0_j, c_k = Σ_j g_j z^A_{j,k}.
/// Check (with the erratum of Trail of Bits' 2024 audit of Silence Labs' dkls23, appendix F, applied: θ ∈ Z_q^{ρ×ℓ} is
/// indexed by the ℓ inputs and â by the ρ check rows): θ = H(ctx′, τ), μ = â + Σ_k θ_k·a_k,
/// r_j = z^A_{j,ℓ+1} + Σ_k θ_k·z^A_{j,k}, and she sends (τ, μ, ρ̃ = H(ctx′, r_1..r_ξ)).</item>
/// <item>Bob: z^B_j = w_j + β_j·τ_j (so z^A_j + z^B_j = β_j·α), r′_j = β_j·μ − (z^B_{j,ℓ+1} + Σ_k θ_k·z^B_{j,k}),
/// and checks H(ctx′, r′) = ρ̃ in constant time; d_k = Σ_j g_j z^B_{j,k}.</item>
/// </list>
/// Alice's inputs are known when she answers, so the derandomisation γ = a − ã of the paper is not needed (ã = a).
/// Both nonces (Bob's in step 1, Alice's in step 2) enter the context, so neither side can force a replayed transcript.
/// </summary>
internal static class RandomVole
{
    internal const int L = 2;

    internal const int Xi = SoftSpokenOt.Xi;

    internal const int BobMessageSize = 32 + SoftSpokenOt.MessageSize;

    internal const int AliceMessageSize = 32 + (Xi * SoftSpokenOt.Width * 32) + 32 + 32;

    private static readonly Secp256k1Scalar[] s_gadget = BuildGadget();

    /// <summary>The random tail of g (j ≥ 256) prepared for multiplication: the same products, one Montgomery step each.</summary>
    private static readonly Secp256k1ScalarMultiplier[] s_gadgetTail = [.. s_gadget.Skip(256).Select(g => g.ToMultiplier())];

    internal static ReadOnlySpan<Secp256k1Scalar> Gadget => s_gadget;

    /// <summary>Bob's secret state between his message and Alice's answer.</summary>
    internal sealed class BobState : IDisposable
    {
        internal readonly SoftSpokenOt.ReceiverState Ot = new();
        internal byte[] Ctx = [];
        internal Secp256k1Scalar B;

        public void Dispose()
        {
            Ot.Dispose();
            B = default;
        }
    }

    /// <summary>ctx = H(sid, Alice, Bob, Bob's nonce): fixes the extension to one session, pair and direction.</summary>
    internal static byte[] Context(ReadOnlySpan<byte> sid, Identifier alice, Identifier bob, ReadOnlySpan<byte> bobNonce)
    {
        using var h = new DklsHash("rvole/ctx");
        return h.Add(sid).Add(alice).Add(bob).Add(bobNonce).Finish();
    }

    private static byte[] Context2(ReadOnlySpan<byte> ctx, ReadOnlySpan<byte> aliceNonce)
    {
        using var h = new DklsHash("rvole/ctx2");
        return h.Add(ctx).Add(aliceNonce).Finish();
    }

    /// <summary>Step 1 (Bob): samples β and b, and writes the extension message.</summary>
    internal static byte[] BobStart(ReadOnlySpan<byte> seeds0, ReadOnlySpan<byte> seeds1, ReadOnlySpan<byte> sid, Identifier alice, Identifier bob, IRandomSource random, BobState state)
    {
        Span<byte> nonce = stackalloc byte[32];
        Span<byte> beta = stackalloc byte[Xi / 8];
        Span<byte> pad = stackalloc byte[SoftSpokenOt.PadRows / 8];
        random.Fill(nonce);
        random.Fill(beta);
        random.Fill(pad);
        try
        {
            state.Ctx = Context(sid, alice, bob, nonce);
            byte[] ext = SoftSpokenOt.Receive(seeds0, seeds1, state.Ctx, beta, pad, state.Ot);
            Secp256k1Scalar acc = Secp256k1Scalar.Zero;
            for (int j = 255; j >= 0; j--)
            {
                acc = acc + acc + Bit(beta, j);
            }

            for (int j = 256; j < Xi; j++)
            {
                acc += s_gadget[j].MultiplyByBit(BitOf(beta, j));
            }

            state.B = acc;
            byte[] msg = new byte[BobMessageSize];
            nonce.CopyTo(msg);
            ext.CopyTo(msg, 32);
            return msg;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(beta);
            CryptographicOperations.ZeroMemory(pad);
        }
    }

    /// <summary>Step 2 (Alice): checks Bob's extension, answers for inputs <paramref name="a"/>; returns her shares c.</summary>
    internal static byte[] AliceRespond(
        ReadOnlySpan<byte> delta, ReadOnlySpan<byte> seeds, ReadOnlySpan<byte> sid, Identifier alice, Identifier bob,
        byte[] bobMessage, ReadOnlySpan<Secp256k1Scalar> a, IRandomSource random, Span<Secp256k1Scalar> c)
    {
        if (bobMessage.Length != BobMessageSize)
        {
            throw DklsErrors.Malformed(bob, "rvole.bobMessage", $"length {bobMessage.Length}, expected {BobMessageSize}");
        }

        byte[] ctx = Context(sid, alice, bob, bobMessage.AsSpan(0, 32));
        byte[] rows = GC.AllocateArray<byte>(SoftSpokenOt.Rows * 16, pinned: true);
        const int Chunk = SoftSpokenOt.RowChunk;
        Span<byte> aliceNonce = stackalloc byte[32];
        Span<byte> delta2 = stackalloc byte[Chunk * 16];
        Span<Secp256k1Scalar> v0 = stackalloc Secp256k1Scalar[Chunk * SoftSpokenOt.Width];
        Span<Secp256k1Scalar> v1 = stackalloc Secp256k1Scalar[Chunk * SoftSpokenOt.Width];
        Span<Secp256k1Scalar> alpha = stackalloc Secp256k1Scalar[SoftSpokenOt.Width];
        try
        {
            SoftSpokenOt.Send(delta, seeds, ctx, bobMessage.AsSpan(32), bob, rows);
            random.Fill(aliceNonce);
            byte[] ctx2 = Context2(ctx, aliceNonce);
            alpha[0] = a[0];
            alpha[1] = a[1];
            alpha[2] = Secp256k1Scalar.Random(random);
            byte[] msg = new byte[AliceMessageSize];
            aliceNonce.CopyTo(msg);
            var za = new Secp256k1Scalar[Xi * SoftSpokenOt.Width];
            for (int j0 = 0; j0 < Xi; j0 += Chunk)
            {
                // Eight rows at a time (their SHA-256 calls run in lanes): v^0 from Q_j, v^1 from Q_j ⊕ Δ.
                ReadOnlySpan<byte> q = rows.AsSpan(j0 * 16, Chunk * 16);
                for (int b = 0; b < Chunk * 16; b++)
                {
                    delta2[b] = (byte)(q[b] ^ delta[b & 15]);
                }

                SoftSpokenOt.RowOutputs(ctx2, j0, q, v0);
                SoftSpokenOt.RowOutputs(ctx2, j0, delta2, v1);
                for (int m = 0; m < Chunk * SoftSpokenOt.Width; m++)
                {
                    int k = m % SoftSpokenOt.Width;
                    (v0[m] - v1[m] + alpha[k]).WriteTo(msg.AsSpan(32 + (((j0 * SoftSpokenOt.Width) + m) * 32), 32));
                    za[(j0 * SoftSpokenOt.Width) + m] = -v0[m];
                }
            }

            Span<Secp256k1Scalar> theta = stackalloc Secp256k1Scalar[L];
            Theta(ctx2, msg.AsSpan(32, Xi * SoftSpokenOt.Width * 32), theta);
            Secp256k1ScalarMultiplier theta0 = theta[0].ToMultiplier(), theta1 = theta[1].ToMultiplier();
            Secp256k1Scalar mu = alpha[2] + theta0.Multiply(a[0]) + theta1.Multiply(a[1]);

            using (var h = new DklsHash("rvole/check"))
            {
                h.Add(ctx2);
                Span<byte> rb = stackalloc byte[32];
                for (int j = 0; j < Xi; j++)
                {
                    int o = j * SoftSpokenOt.Width;
                    Secp256k1Scalar r = za[o + L] + theta0.Multiply(za[o]) + theta1.Multiply(za[o + 1]);
                    r.WriteTo(rb);
                    h.Add(rb);
                }

                CryptographicOperations.ZeroMemory(rb);
                mu.WriteTo(msg.AsSpan(AliceMessageSize - 64, 32));
                h.Finish(msg.AsSpan(AliceMessageSize - 32, 32));
            }

            for (int k = 0; k < L; k++)
            {
                c[k] = GadgetSum(za, k);
            }

            Array.Clear(za);
            return msg;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(rows);
            CryptographicOperations.ZeroMemory(delta2);
            v0.Clear();
            v1.Clear();
            alpha.Clear();
        }
    }

    /// <summary>Step 3 (Bob): checks Alice's answer (RVOLE check value) and returns b and his shares d.</summary>
    internal static Secp256k1Scalar BobFinish(BobState state, byte[] aliceMessage, Identifier alice, Span<Secp256k1Scalar> d)
    {
        if (aliceMessage.Length != AliceMessageSize)
        {
            throw DklsErrors.Malformed(alice, "rvole.aliceMessage", $"length {aliceMessage.Length}, expected {AliceMessageSize}");
        }

        for (int i = 0; i < Xi * SoftSpokenOt.Width; i++)
        {
            if (!Secp256k1Scalar.TryFromBytes(aliceMessage.AsSpan(32 + (i * 32), 32), out _))
            {
                throw DklsErrors.Malformed(alice, $"rvole.tau[{i}]", "scalar is not below the group order n");
            }
        }

        if (!Secp256k1Scalar.TryFromBytes(aliceMessage.AsSpan(AliceMessageSize - 64, 32), out Secp256k1Scalar mu))
        {
            throw DklsErrors.Malformed(alice, "rvole.mu", "scalar is not below the group order n");
        }

        byte[] ctx2 = Context2(state.Ctx, aliceMessage.AsSpan(0, 32));
        Span<Secp256k1Scalar> theta = stackalloc Secp256k1Scalar[L];
        Theta(ctx2, aliceMessage.AsSpan(32, Xi * SoftSpokenOt.Width * 32), theta);
        Secp256k1ScalarMultiplier theta0 = theta[0].ToMultiplier(), theta1 = theta[1].ToMultiplier();
        Span<Secp256k1Scalar> w = stackalloc Secp256k1Scalar[SoftSpokenOt.RowChunk * SoftSpokenOt.Width];
        var zb = new Secp256k1Scalar[Xi * SoftSpokenOt.Width];
        Span<byte> mine = stackalloc byte[32];
        Span<byte> rb = stackalloc byte[32];
        try
        {
            using (var h = new DklsHash("rvole/check"))
            {
                h.Add(ctx2);
                Span<byte> masked = stackalloc byte[32];
                for (int j = 0; j < Xi; j++)
                {
                    // β_j·τ_j without a branch or a multiplication: τ_j's bytes masked by β_j (0x00 or 0xFF).
                    int beta = BitOf(state.Ot.Choices, j);
                    byte mask = unchecked((byte)(0 - beta));
                    int wj = (j % SoftSpokenOt.RowChunk) * SoftSpokenOt.Width;
                    if (wj == 0)
                    {
                        // The random-OT outputs of the next eight rows, hashed in lanes.
                        SoftSpokenOt.RowOutputs(ctx2, j, state.Ot.Rows16.AsSpan(j * 16, SoftSpokenOt.RowChunk * 16), w);
                    }

                    for (int k = 0; k < SoftSpokenOt.Width; k++)
                    {
                        ReadOnlySpan<byte> t = aliceMessage.AsSpan(32 + (((j * SoftSpokenOt.Width) + k) * 32), 32);
                        for (int b = 0; b < 32; b++)
                        {
                            masked[b] = (byte)(t[b] & mask);
                        }

                        zb[(j * SoftSpokenOt.Width) + k] = w[wj + k] + Secp256k1Scalar.FromBytes(masked);
                    }

                    int o = j * SoftSpokenOt.Width;
                    Secp256k1Scalar r = zb[o + L] + theta0.Multiply(zb[o]) + theta1.Multiply(zb[o + 1]);
                    (mu.MultiplyByBit(beta) - r).WriteTo(rb);
                    h.Add(rb);
                }

                h.Finish(mine);
            }

            if (!CryptographicOperations.FixedTimeEquals(mine, aliceMessage.AsSpan(AliceMessageSize - 32, 32)))
            {
                throw DklsErrors.Check(DklsFailure.RvoleCheck, alice, "the random-VOLE check value does not match");
            }

            for (int k = 0; k < L; k++)
            {
                d[k] = GadgetSum(zb, k);
            }

            return state.B;
        }
        finally
        {
            Array.Clear(zb);
            w.Clear();
            CryptographicOperations.ZeroMemory(rb);
        }
    }

    private static void Theta(ReadOnlySpan<byte> ctx2, ReadOnlySpan<byte> tau, Span<Secp256k1Scalar> theta)
    {
        byte[] seed;
        using (var h = new DklsHash("rvole/theta"))
        {
            seed = h.Add(ctx2).Add(tau).Finish();
        }

        for (int k = 0; k < theta.Length; k++)
        {
            using var h = new DklsHash("rvole/theta-k");
            theta[k] = h.Add(seed).Add(k).FinishScalar();
        }
    }

    /// <summary>
    /// ⟨g, z_{·,k}⟩ over the rows of <paramref name="z"/> (<see cref="SoftSpokenOt.Width"/> scalars per row): Horner's rule
    /// over the powers of two (additions only), then the random tail of g.
    /// </summary>
    private static Secp256k1Scalar GadgetSum(ReadOnlySpan<Secp256k1Scalar> z, int k)
    {
        Secp256k1Scalar acc = Secp256k1Scalar.Zero;
        for (int j = 255; j >= 0; j--)
        {
            acc = acc + acc + z[(j * SoftSpokenOt.Width) + k];
        }

        for (int j = 256; j < Xi; j++)
        {
            acc += s_gadgetTail[j - 256].Multiply(z[(j * SoftSpokenOt.Width) + k]);
        }

        return acc;
    }

    private static Secp256k1Scalar Bit(ReadOnlySpan<byte> bits, int j) => Secp256k1Scalar.FromUInt64((ulong)BitOf(bits, j));

    private static int BitOf(ReadOnlySpan<byte> bits, int j) => (bits[j >> 3] >> (j & 7)) & 1;

    private static Secp256k1Scalar[] BuildGadget()
    {
        var g = new Secp256k1Scalar[Xi];
        Secp256k1Scalar p = Secp256k1Scalar.One;
        for (int j = 0; j < Xi; j++)
        {
            if (j < 256)
            {
                g[j] = p;
                p += p;
            }
            else
            {
                using var h = new DklsHash("rvole/gadget");
                g[j] = h.Add(j).FinishScalar();
            }
        }

        return g;
    }
}
