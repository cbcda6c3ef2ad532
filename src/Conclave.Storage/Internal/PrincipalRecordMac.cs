using System.Buffers.Binary;
using System.Text;

namespace Conclave.Storage.Internal;

/// <summary>
/// Integrity of principal and credential rows (issue 16), under the same per-store MAC key as key records
/// (<see cref="KeyRecordMac"/>), domain-separated:
/// <c>principals.mac = HMAC-SHA256(macKey, "conclave/principal-record/v1" ‖ lp(id) ‖ lp(kind) ‖ lp(roles) ‖ lp(scope) ‖ u8 disabled)</c>,
/// <c>principal_credentials.mac = HMAC-SHA256(macKey, "conclave/credential-record/v1" ‖ lp(key_id) ‖ lp(principal_id) ‖ lp(algorithm)
/// ‖ lp(public_key) ‖ i64be lease_expires_at ‖ u8 revoked ‖ i64be revoked_at (0 when none))</c>, lp = u32be length ‖ bytes.
/// </summary>
internal static class PrincipalRecordMac
{
    private static readonly byte[] s_principal = Encoding.ASCII.GetBytes("conclave/principal-record/v1");
    private static readonly byte[] s_credential = Encoding.ASCII.GetBytes("conclave/credential-record/v1");

    public const string PrincipalColumns = "id, kind, roles, scope, disabled, created_at, updated_at";
    public const string CredentialColumns = "key_id, principal_id, algorithm, public_key, created_at, lease_expires_at, revoked, revoked_at";

    public static byte[] EncodePrincipal(string id, string kind, string roles, string scope, bool disabled)
    {
        using var ms = new MemoryStream();
        ms.Write(s_principal);
        Lp(ms, Encoding.UTF8.GetBytes(id));
        Lp(ms, Encoding.UTF8.GetBytes(kind));
        Lp(ms, Encoding.UTF8.GetBytes(roles));
        Lp(ms, Encoding.UTF8.GetBytes(scope));
        ms.WriteByte(disabled ? (byte)1 : (byte)0);
        return ms.ToArray();
    }

    public static byte[] EncodeCredential(string keyId, string principalId, string algorithm, byte[] publicKey, long leaseExpiresAtMs, bool revoked, long? revokedAtMs)
    {
        using var ms = new MemoryStream();
        ms.Write(s_credential);
        Lp(ms, Encoding.UTF8.GetBytes(keyId));
        Lp(ms, Encoding.UTF8.GetBytes(principalId));
        Lp(ms, Encoding.UTF8.GetBytes(algorithm));
        Lp(ms, publicKey);
        I64(ms, leaseExpiresAtMs);
        ms.WriteByte(revoked ? (byte)1 : (byte)0);
        I64(ms, revokedAtMs ?? 0);
        return ms.ToArray();
    }

    private static void Lp(MemoryStream ms, byte[] b)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)b.Length);
        ms.Write(len);
        ms.Write(b);
    }

    private static void I64(MemoryStream ms, long v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, v);
        ms.Write(b);
    }
}
