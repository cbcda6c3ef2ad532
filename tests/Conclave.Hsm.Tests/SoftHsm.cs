using System.Diagnostics;
using System.Security.Cryptography;
using Conclave.Hsm.Interop;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace Conclave.Hsm.Tests;

/// <summary>
/// The SoftHSM2 token that ./test.sh prepares (scripts/test-services/softhsm.sh). The tests FAIL, not skip,
/// when its variables are missing: CI always runs them through test.sh.
/// </summary>
internal static class SoftHsm
{
    internal const string TemporaryPrefix = "conclave-tmp-";

    internal static string ModulePath => Required("CONCLAVE_TEST_HSM_MODULE");

    internal static string TokenLabel => Required("CONCLAVE_TEST_HSM_TOKEN");

    internal static string PinFile => Required("CONCLAVE_TEST_HSM_PIN_FILE");

    internal static HsmOptions Options(int poolSize = HsmOptions.DefaultSessionPoolSize) => new()
    {
        ModulePath = ModulePath,
        TokenLabel = TokenLabel,
        PinFile = PinFile,
        SessionPoolSize = poolSize,
    };

    private static string Required(string name)
    {
        _ = Required("SOFTHSM2_CONF", name);
        return Required(name, name);
    }

    private static string Required(string name, string forWhat)
    {
        string? value = Environment.GetEnvironmentVariable(name);
        Assert.True(
            !string.IsNullOrEmpty(value),
            $"{name} is not set, so {forWhat} is unknown: the HSM tests need a SoftHSM2 token. Run them through ./test.sh, "
            + "or first: eval \"$(bash scripts/test-services/softhsm.sh)\"");
        return value!;
    }

    /// <summary>A unique label for a throw-away token (softhsm.sh deletes leftovers).</summary>
    // Not TestSeed: a token a run failed to delete outlives it, and a replayed label would name that token.
    internal static string NewTemporaryLabel() => TemporaryPrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    /// <summary>
    /// Initialises a new token in SoftHSM2's free slot (C_InitToken, then C_InitPIN as the security officer) and
    /// returns options whose PIN file (mode 0600) holds its user PIN.
    /// </summary>
    internal static TemporaryToken CreateToken()
    {
        string label = NewTemporaryLabel();
        string dir = Directory.CreateTempSubdirectory("conclave-hsm-test-").FullName;
        // Not TestSeed: the PINs of a token that may outlive the run must not be derivable from the printed run seed.
        string pin = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        string soPin = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        string pinFile = Path.Combine(dir, "user.pin");
        File.WriteAllText(pinFile, pin + "\n");
        File.SetUnixFileMode(pinFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        using (Pkcs11Module module = Pkcs11Module.Acquire(ModulePath))
        {
            ISlot free = module.Library.GetSlotList(SlotsType.WithTokenPresent).First(s => !s.GetTokenInfo().TokenFlags.TokenInitialized);
            free.InitToken(soPin, label);
            using ISession so = free.OpenSession(SessionType.ReadWrite);
            so.Login(CKU.CKU_SO, soPin);
            so.InitPin(pin);
            so.Logout();
        }

        return new TemporaryToken(label, dir, new HsmOptions { ModulePath = ModulePath, TokenLabel = label, PinFile = pinFile, SessionPoolSize = 4 });
    }

    internal sealed class TemporaryToken(string label, string directory, HsmOptions options) : IDisposable
    {
        public string Label { get; } = label;

        public string Directory { get; } = directory;

        public HsmOptions Options { get; } = options;

        /// <summary>Deletes the token with softhsm2-util once no HsmToken of this process holds the module.</summary>
        public void Dispose()
        {
            if (!Pkcs11Module.IsLoaded(ModulePath))
            {
                var psi = new ProcessStartInfo("softhsm2-util", ["--delete-token", "--token", Label])
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                };
                using Process? p = Process.Start(psi);
                p?.WaitForExit(10_000);
            }

            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }
}

/// <summary>One logged-in token shared by the tests of a class.</summary>
public sealed class SharedTokenFixture : IDisposable
{
    private readonly Lazy<HsmToken> _token = new(() => HsmToken.Open(SoftHsm.Options()));
    private readonly System.Collections.Concurrent.ConcurrentBag<(string Id, bool Kek)> _created = [];

    internal HsmToken Token => _token.Value;

    /// <summary>Generates a key and remembers to delete it when the class is done (the test token persists).</summary>
    internal HsmSigningKey Generate(Schemes.HsmSignatureScheme scheme, string prefix = "test")
    {
        string id = NewKeyId(prefix);
        _created.Add((id, false));
        return Token.GenerateKey(scheme, id);
    }

    internal string TrackKey(string id, bool kek = false)
    {
        _created.Add((id, kek));
        return id;
    }

    /// <summary>A key id no earlier run used (keys persist in the test token).</summary>
    // Not TestSeed: with the same run seed a replayed id would find the key an earlier run left on the persistent token.
    internal static string NewKeyId(string prefix) => $"{prefix}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";

    public void Dispose()
    {
        if (_token.IsValueCreated)
        {
            foreach ((string id, bool kek) in _created)
            {
                _ = kek ? _token.Value.DeleteKeyEncryptionKey(id) : _token.Value.DeleteKey(id);
            }

            _token.Value.Dispose();
        }
    }
}
