using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace Conclave.Testing;

/// <summary>
/// Random test data that can be replayed. Every value derives from one run seed: CONCLAVE_TEST_SEED (decimal) when it is
/// set (./test.sh picks a fresh one per run and prints it), otherwise 1, so a bare <c>dotnet test</c> is reproducible.
/// Each value is named by its test and a label, so it does not depend on test order or parallelism: a failure is
/// replayed by running again with the printed CONCLAVE_TEST_SEED.
/// </summary>
public static class TestSeed
{
    public const string EnvironmentVariable = "CONCLAVE_TEST_SEED";

    /// <summary>The run seed.</summary>
    public static ulong Run { get; } = ulong.TryParse(Environment.GetEnvironmentVariable(EnvironmentVariable), NumberStyles.None, CultureInfo.InvariantCulture, out ulong s) ? s : 1;

    /// <summary>A random stream for one (test, label) pair of this run.</summary>
    public static DeterministicRandomSource For(string label, [CallerMemberName] string test = "")
    {
        byte[] key = SHA256.HashData(Encoding.UTF8.GetBytes($"{Run}\0{test}\0{label}"));
        return new DeterministicRandomSource(key);
    }

    /// <summary><paramref name="count"/> random bytes for one (test, label) pair of this run.</summary>
    public static byte[] Bytes(int count, string label, [CallerMemberName] string test = "")
    {
        byte[] b = new byte[count];
        For(label, test).Fill(b);
        return b;
    }

    /// <summary>
    /// A <see cref="System.Random"/> for one (test, label) pair of this run, for choices (counts, indexes, orders, mutations)
    /// that are easier to draw from it than from a byte stream.
    /// </summary>
    public static Random Random(string label, [CallerMemberName] string test = "") => new(BitConverter.ToInt32(Bytes(4, label, test)));

    /// <summary>
    /// A P-256 (secp256r1) key for one (test, label) pair of this run: its private scalar d is the first 32 bytes of the
    /// pair's stream, read big-endian, with 1 &lt;= d &lt; n (rejection sampling: a draw outside the range is discarded and the
    /// next 32 bytes are read). Only D is imported: .NET derives the public point Q = d·G from it (on Linux, OpenSSL does).
    /// </summary>
    public static ECDsa P256(string label, [CallerMemberName] string test = "")
    {
        DeterministicRandomSource random = For(label, test);
        byte[] d = new byte[32];
        try
        {
            do
            {
                random.Fill(d);
            }
            while (!d.AsSpan().ContainsAnyExcept((byte)0) || d.AsSpan().SequenceCompareTo(P256Order) >= 0);

            return ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d });
        }
        finally
        {
            CryptographicOperations.ZeroMemory(d);
        }
    }

    /// <summary>The order n of the P-256 group (SEC 2 section 2.4.2; FIPS 186-5), big-endian.</summary>
    private static ReadOnlySpan<byte> P256Order =>
    [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
    ];
}
