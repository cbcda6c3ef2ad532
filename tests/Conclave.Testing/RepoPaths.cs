namespace Conclave.Testing;

/// <summary>Locates the repository's own folders from a test's output directory. Tests read only what the repository holds.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    public static string Root => s_root.Value;

    /// <summary>tests/vectors/&lt;relative&gt;.</summary>
    public static string Vector(string relative) => Path.Combine(Root, "tests", "vectors", relative);

    public static string Interop => Path.Combine(Root, "tests", "interop");

    /// <summary>The build configuration the tests run under (Debug or Release), read off the test output path.</summary>
    public static string Configuration =>
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    /// <summary>conclave.dll built by the solution in the same configuration (tests start real node processes from it).</summary>
    public static string CliDll
    {
        get
        {
            string path = Path.Combine(Root, "src", "Conclave.Cli", "bin", Configuration, "net10.0", "conclave.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException("build the solution first: conclave.dll not found", path);
        }
    }

    /// <summary>The test node host with fault hooks (tests/Conclave.Node.FaultyNode), built by the solution in the same configuration.</summary>
    public static string FaultyNodeDll
    {
        get
        {
            string path = Path.Combine(Root, "tests", "Conclave.Node.FaultyNode", "bin", Configuration, "net10.0", "Conclave.Node.FaultyNode.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException("build tests/Conclave.Node.FaultyNode first", path);
        }
    }

    private static string FindRoot()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null)
        {
            if (File.Exists(Path.Combine(dir, "Conclave.slnx")))
            {
                return dir;
            }

            dir = Path.GetDirectoryName(dir);
        }

        throw new InvalidOperationException("repository root (Conclave.slnx) not found above " + AppContext.BaseDirectory);
    }
}
