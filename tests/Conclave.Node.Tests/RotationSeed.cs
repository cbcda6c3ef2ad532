using System.Globalization;
using System.Runtime.CompilerServices;
using Xunit.Abstractions;

namespace Conclave.Node.Tests;

/// <summary>
/// The seed of a test's random crash or kill points: from the run seed (TestSeed, so CONCLAVE_TEST_SEED replays it), or
/// CONCLAVE_ROTATION_SEED when that is set (the points of one earlier run under any run seed). Printed either way.
/// </summary>
internal static class RotationSeed
{
    internal const string EnvironmentVariable = "CONCLAVE_ROTATION_SEED";

    internal static int Choose(string label, ITestOutputHelper output, [CallerMemberName] string test = "")
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable(EnvironmentVariable), NumberStyles.Integer, CultureInfo.InvariantCulture, out int replay)
            ? replay
            : BitConverter.ToInt32(TestSeed.Bytes(4, label, test)) & int.MaxValue;
        output.WriteLine($"seed {seed} (run seed {TestSeed.EnvironmentVariable}={TestSeed.Run}; set {EnvironmentVariable}={seed} to replay these points)");
        return seed;
    }
}
