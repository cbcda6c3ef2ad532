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
}
