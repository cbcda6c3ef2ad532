using System.Security.Cryptography;
using System.Text;
using Conclave.Crypto.Signing;
using Conclave.Storage.Internal;

namespace Conclave.Storage.Audit;

/// <summary>
/// An audit log's checkpoint key handing over to the next one (docs/STORAGE.md "Rotating the checkpoint key"). It is an
/// entry of the chain itself (action <see cref="Action"/>), written by <see cref="IAuditLog.HandOverCheckpointKeyAsync"/>;
/// its result text carries both public keys and the outgoing key's signature over
/// <c>"conclave/audit-key-handover/v1" ‖ prevHash[32] ‖ lp(scheme) ‖ lp(old) ‖ lp(new)</c> (SHA-256 of it for digest
/// schemes), where prevHash is the hash of the entry before it: a handover cannot be moved to another place or another
/// log. Checkpoints at and after its seq, and the head, are signed by the new key.
/// </summary>
public sealed record AuditKeyHandover(string Scheme, byte[] OldPublicKey, byte[] NewPublicKey, byte[] Signature)
{
    /// <summary>The audit action of a handover entry.</summary>
    public const string Action = "audit.checkpoint-key";

    private const string Prefix = "handover";
    private static readonly byte[] s_domain = Encoding.ASCII.GetBytes("conclave/audit-key-handover/v1");

    /// <summary>The handover from <paramref name="current"/> to <paramref name="next"/> at the place after the entry whose hash is <paramref name="prevHash"/>.</summary>
    public static AuditKeyHandover Create(ISigningKey current, ISigningKey next, ReadOnlySpan<byte> prevHash)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(next);
        if (current.Scheme.Name != next.Scheme.Name)
        {
            throw StorageErrors.Invalid("next", $"the next checkpoint key must use the same scheme as the current one ({current.Scheme.Name})");
        }

        byte[] oldKey = current.PublicKey.ToArray(), newKey = next.PublicKey.ToArray();
        byte[] signature = current.Sign(SigningInput(current.Scheme, prevHash, oldKey, newKey)).Signature;
        return new AuditKeyHandover(current.Scheme.Name, oldKey, newKey, signature);
    }

    /// <summary>True when the outgoing key's signature verifies for the place after <paramref name="prevHash"/>.</summary>
    public bool Verify(ReadOnlySpan<byte> prevHash)
    {
        if (!SignatureSchemes.TryGet(Scheme, out SoftwareSignatureScheme? scheme) || scheme is null)
        {
            return false;
        }

        try
        {
            return scheme.Verify(OldPublicKey, SigningInput(scheme, prevHash, OldPublicKey, NewPublicKey), Signature);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>The entry's result text: <c>handover scheme=S old=HEX new=HEX sig=HEX</c>.</summary>
    public string ToResultText() =>
        $"{Prefix} scheme={Scheme} old={Convert.ToHexStringLower(OldPublicKey)} new={Convert.ToHexStringLower(NewPublicKey)} sig={Convert.ToHexStringLower(Signature)}";

    /// <summary>Reads a handover entry's result text; false when it is not exactly the form <see cref="ToResultText"/> writes.</summary>
    public static bool TryParse(string result, out AuditKeyHandover? handover)
    {
        handover = null;
        string[] parts = result.Split(' ');
        if (parts.Length != 5 || parts[0] != Prefix)
        {
            return false;
        }

        string? Field(string part, string name) => part.StartsWith(name + "=", StringComparison.Ordinal) ? part[(name.Length + 1)..] : null;
        string? scheme = Field(parts[1], "scheme");
        byte[]? oldKey = Hex(Field(parts[2], "old")), newKey = Hex(Field(parts[3], "new")), sig = Hex(Field(parts[4], "sig"));
        if (string.IsNullOrEmpty(scheme) || oldKey is null || newKey is null || sig is null)
        {
            return false;
        }

        handover = new AuditKeyHandover(scheme, oldKey, newKey, sig);
        return true;
    }

    private static byte[]? Hex(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.Length % 2 != 0 || !text.All(Uri.IsHexDigit))
        {
            return null;
        }

        return Convert.FromHexString(text);
    }

    private static byte[] SigningInput(SignatureScheme scheme, ReadOnlySpan<byte> prevHash, byte[] oldKey, byte[] newKey)
    {
        byte[] name = Encoding.UTF8.GetBytes(scheme.Name);
        var m = new byte[s_domain.Length + prevHash.Length + 12 + name.Length + oldKey.Length + newKey.Length];
        int o = 0;
        s_domain.CopyTo(m, o);
        o += s_domain.Length;
        prevHash.CopyTo(m.AsSpan(o));
        o += prevHash.Length;
        foreach (byte[] part in (byte[][])[name, oldKey, newKey])
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(o), (uint)part.Length);
            part.CopyTo(m, o + 4);
            o += 4 + part.Length;
        }

        return scheme.InputKind == SignInputKind.Digest32 ? SHA256.HashData(m) : m;
    }
}
