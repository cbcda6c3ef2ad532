using Conclave.Wallets.Internal.Curves;

namespace Conclave.Wallets.Hd;

/// <summary>
/// A curve for hierarchical deterministic keys: BIP-32 on secp256k1, generalized by SLIP-10 to nist256p1, ed25519
/// and curve25519. Each curve has its own master-key HMAC key ("Bitcoin seed", "Nist256p1 seed", "ed25519 seed",
/// "curve25519 seed"); ed25519 and curve25519 derive hardened children only.
/// </summary>
public sealed class HdCurve
{
    private HdCurve(string name, string hmacKey, bool nonHardened, int publicKeySize, HdCurveOps ops)
    {
        Name = name;
        MasterHmacKey = System.Text.Encoding.ASCII.GetBytes(hmacKey);
        SupportsNonHardenedDerivation = nonHardened;
        PublicKeySizeInBytes = publicKeySize;
        Ops = ops;
    }

    /// <summary>BIP-32's curve (SLIP-10 "secp256k1"): master key from HMAC key "Bitcoin seed".</summary>
    public static HdCurve Secp256k1 { get; } = new("secp256k1", "Bitcoin seed", true, 33, new Secp256k1HdOps());

    /// <summary>NIST P-256 (SLIP-10 "nist256p1"), with the SLIP-10 retry when IL ≥ n or the key is zero.</summary>
    public static HdCurve Nist256p1 { get; } = new("nist256p1", "Nist256p1 seed", true, 33, new Nist256p1HdOps());

    /// <summary>Ed25519 (SLIP-10): hardened derivation only; the private key is the RFC 8032 32-byte seed.</summary>
    public static HdCurve Ed25519 { get; } = new("ed25519", "ed25519 seed", false, 32, new Ed25519HdOps());

    /// <summary>Curve25519 (SLIP-10, X25519 keys): hardened derivation only.</summary>
    public static HdCurve Curve25519 { get; } = new("curve25519", "curve25519 seed", false, 32, new Curve25519HdOps());

    public static IReadOnlyList<HdCurve> All { get; } = [Secp256k1, Nist256p1, Ed25519, Curve25519];

    /// <summary>The SLIP-10 name: secp256k1, nist256p1, ed25519 or curve25519.</summary>
    public string Name { get; }

    public bool SupportsNonHardenedDerivation { get; }

    /// <summary>Size of <see cref="ExtendedPrivateKey.PublicKey"/>: 33 (SEC1 compressed) or 32 (ed25519, X25519).</summary>
    public int PublicKeySizeInBytes { get; }

    internal byte[] MasterHmacKey { get; }

    internal HdCurveOps Ops { get; }

    public static bool TryGet(string name, out HdCurve? curve)
    {
        ArgumentNullException.ThrowIfNull(name);
        curve = All.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? (string.Equals(name, "p256", StringComparison.OrdinalIgnoreCase) || string.Equals(name, "secp256r1", StringComparison.OrdinalIgnoreCase) ? Nist256p1 : null);
        return curve is not null;
    }

    public static HdCurve Get(string name) => TryGet(name, out HdCurve? c) ? c! : throw WalletErrors.UnknownCurve();

    public override string ToString() => Name;
}

/// <summary>BIP-32 serialization versions ("Serialization format"): mainnet xprv/xpub, testnet tprv/tpub.</summary>
public sealed class Bip32Network
{
    private Bip32Network(string name, uint privateVersion, uint publicVersion)
    {
        Name = name;
        PrivateVersion = privateVersion;
        PublicVersion = publicVersion;
    }

    /// <summary>xprv (0x0488ADE4) / xpub (0x0488B21E).</summary>
    public static Bip32Network Mainnet { get; } = new("mainnet", 0x0488ADE4, 0x0488B21E);

    /// <summary>tprv (0x04358394) / tpub (0x043587CF).</summary>
    public static Bip32Network Testnet { get; } = new("testnet", 0x04358394, 0x043587CF);

    public string Name { get; }

    public uint PrivateVersion { get; }

    public uint PublicVersion { get; }

    internal static Bip32Network? FromVersion(uint version, out bool isPrivate)
    {
        foreach (Bip32Network n in (Bip32Network[])[Mainnet, Testnet])
        {
            if (version == n.PrivateVersion || version == n.PublicVersion)
            {
                isPrivate = version == n.PrivateVersion;
                return n;
            }
        }

        isPrivate = false;
        return null;
    }

    public override string ToString() => Name;
}
