using System.Text.Json;
using Conclave.Crypto.Memory;
using Conclave.Hsm.Internal;

namespace Conclave.Hsm.Tests;

public sealed class HsmOptionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("conclave-hsm-options-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static HsmOptions Valid => new() { ModulePath = "/x/lib.so", TokenLabel = "t", PinFile = "/x/pin" };

    [Fact]
    public void ValidOptionsPass() => Valid.Validate();

    [Theory]
    [InlineData("", "t", "/p", null, 8, "module path")]
    [InlineData("/m", "", "/p", null, 8, "token label")]
    [InlineData("/m", "t", null, null, 8, "PIN source is required")]
    [InlineData("/m", "t", "/p", "PIN_VAR", 8, "not both")]
    [InlineData("/m", "t", "/p", null, 0, "sessionPoolSize")]
    [InlineData("/m", "t", "/p", null, 257, "sessionPoolSize")]
    [InlineData("/m", "a-label-that-is-longer-than-32-chars", "/p", null, 8, "at most 32")]
    public void InvalidOptionsAreNamed(string module, string token, string? pinFile, string? pinEnv, int pool, string expected)
    {
        var options = new HsmOptions { ModulePath = module, TokenLabel = token, PinFile = pinFile, PinEnvironmentVariable = pinEnv, SessionPoolSize = pool };
        HsmException e = Assert.Throws<HsmException>(options.Validate);
        Assert.Equal(HsmErrorKind.InvalidConfiguration, e.Kind);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BindsFromTheConfigurationJson()
    {
        const string json = """{ "modulePath": "/usr/lib/softhsm/libsofthsm2.so", "tokenLabel": "prod", "pinFile": "/run/secrets/hsm-pin", "sessionPoolSize": 16 }""";
        HsmOptions options = JsonSerializer.Deserialize<HsmOptions>(json, new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
        options.Validate();
        Assert.Equal("/usr/lib/softhsm/libsofthsm2.so", options.ModulePath);
        Assert.Equal("prod", options.TokenLabel);
        Assert.Equal("/run/secrets/hsm-pin", options.PinFile);
        Assert.Equal(16, options.SessionPoolSize);
        Assert.DoesNotContain("secret", options.ToString().Replace("/run/secrets", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void PinFileIsReadWithoutItsNewline()
    {
        string path = WritePin("1234\r\n", UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using SecretBuffer pin = PinReader.ReadFile(path);
        Assert.True(pin.FixedTimeEquals("1234"u8));
    }

    [Fact]
    public void PinFileReadableByOthersIsRefused()
    {
        string path = WritePin("1234", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        HsmException e = Assert.Throws<HsmException>(() => PinReader.ReadFile(path));
        Assert.Equal(HsmErrorKind.PinUnavailable, e.Kind);
        Assert.Contains("chmod 600", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("1234", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(UnixFileMode.GroupRead)]
    [InlineData(UnixFileMode.GroupWrite)]
    [InlineData(UnixFileMode.OtherWrite)]
    public void PinFileOpenToTheGroupIsRefused(UnixFileMode extra)
    {
        string path = WritePin("1234", UnixFileMode.UserRead | UnixFileMode.UserWrite | extra);
        var options = new HsmOptions { ModulePath = "/x/lib.so", TokenLabel = "tok", PinFile = path };
        HsmException e = Assert.Throws<HsmException>(() => PinReader.Read(options));
        Assert.Equal(HsmErrorKind.PinUnavailable, e.Kind);
        Assert.Contains("chmod 600", e.Message, StringComparison.Ordinal);
        Assert.Contains("'tok'", e.Message, StringComparison.Ordinal);
        Assert.Contains("/x/lib.so", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("1234", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void MissingOrEmptyPinSourcesAreRefused()
    {
        Assert.Equal(HsmErrorKind.PinUnavailable, Assert.Throws<HsmException>(() => PinReader.ReadFile(Path.Combine(_dir, "none"))).Kind);
        string empty = WritePin("\n", UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal(HsmErrorKind.PinUnavailable, Assert.Throws<HsmException>(() => PinReader.ReadFile(empty)).Kind);
        string huge = WritePin(new string('9', 400), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal(HsmErrorKind.PinUnavailable, Assert.Throws<HsmException>(() => PinReader.ReadFile(huge)).Kind);
        HsmException env = Assert.Throws<HsmException>(() => PinReader.ReadEnvironment("CONCLAVE_TEST_UNSET_" + Guid.NewGuid().ToString("N")));
        Assert.Equal(HsmErrorKind.PinUnavailable, env.Kind);
    }

    [Fact]
    public void PinFromEnvironmentVariable()
    {
        string variable = "CONCLAVE_TEST_PIN_ENV_" + Environment.ProcessId;
        Environment.SetEnvironmentVariable(variable, "5678");
        try
        {
            using SecretBuffer pin = PinReader.Read(new HsmOptions { ModulePath = "/m", TokenLabel = "t", PinEnvironmentVariable = variable });
            Assert.True(pin.FixedTimeEquals("5678"u8));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    private string WritePin(string content, UnixFileMode mode)
    {
        string path = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, mode);
        return path;
    }
}
