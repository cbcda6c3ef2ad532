using System.Buffers.Binary;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Kdf;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Signing;

namespace Conclave.Node.Protocol;

/// <summary>
/// A node's long-term identity: an Ed25519 signing key that signs every protocol message it sends (and audit
/// checkpoints), and an X25519 key that point-to-point DKG messages are encrypted to. The agreement key is
/// certified by the identity key so a coordinator cannot substitute its own.
/// Persisted as one envelope sealed under the node's key-encryption key, bound to the node id.
/// </summary>
public sealed class NodeIdentity : IDisposable
{
    private static ReadOnlySpan<byte> AgreementDomain => "conclave/agreement-key/v1"u8;

    private readonly SoftwareSigningKey _signing;
    private readonly SecretBuffer _agreementSecret;

    private NodeIdentity(uint nodeId, SoftwareSigningKey signing, SecretBuffer agreementSecret)
    {
        NodeId = nodeId;
        _signing = signing;
        _agreementSecret = agreementSecret;
        AgreementPublicKey = X25519.PublicKeyOf(agreementSecret.ReadOnlySpan);
        AgreementKeySignature = Sign(AgreementTranscript(nodeId, AgreementPublicKey));
    }

    /// <summary>0 is the coordinator; nodes are 1..n.</summary>
    public uint NodeId { get; }

    public ReadOnlyMemory<byte> IdentityPublicKey => _signing.PublicKey;

    public byte[] AgreementPublicKey { get; }

    public byte[] AgreementKeySignature { get; }

    public static NodeIdentity Generate(uint nodeId)
    {
        SoftwareSigningKey signing = SignatureSchemes.Ed25519.GenerateKey(KeyExportPolicy.AllowExport);
        (SecretBuffer agreement, _) = X25519.GenerateKeyPair(Conclave.Crypto.Randomness.HealthCheckedRandomSource.System);
        return new NodeIdentity(nodeId, signing, agreement);
    }

    public byte[] Sign(ReadOnlySpan<byte> message) => _signing.Sign(message).Signature;

    /// <summary>The identity key as a signer, for audit checkpoints.</summary>
    public ISigningKey SigningKey => _signing;

    /// <summary>Derives a symmetric key shared with a peer's agreement key (X25519 + HKDF-SHA256 with the given context).</summary>
    public SecretBuffer DeriveSharedKey(ReadOnlySpan<byte> peerAgreementPublicKey, ReadOnlySpan<byte> context)
        => X25519.DeriveKey(_agreementSecret.ReadOnlySpan, peerAgreementPublicKey, context);

    public static byte[] AgreementTranscript(uint nodeId, ReadOnlySpan<byte> agreementPublicKey)
    {
        byte[] t = new byte[AgreementDomain.Length + 4 + agreementPublicKey.Length];
        AgreementDomain.CopyTo(t);
        BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(AgreementDomain.Length), nodeId);
        agreementPublicKey.CopyTo(t.AsSpan(AgreementDomain.Length + 4));
        return t;
    }

    /// <summary>Checks that an agreement key was certified by the node's identity key.</summary>
    public static bool VerifyAgreementKey(uint nodeId, ReadOnlySpan<byte> identityPublicKey, ReadOnlySpan<byte> agreementPublicKey, ReadOnlySpan<byte> signature)
        => Ed25519Signature.Instance.Verify(identityPublicKey, AgreementTranscript(nodeId, agreementPublicKey), signature);

    /// <summary>Seals both private keys under a 32-byte KEK, bound to the node id.</summary>
    public byte[] Seal(ReadOnlySpan<byte> kek)
    {
        using SecretBuffer signingKey = _signing.ExportPrivateKey();
        using SecretBuffer plain = SecretBuffer.Allocate(64);
        signingKey.ReadOnlySpan.CopyTo(plain.Span);
        _agreementSecret.ReadOnlySpan.CopyTo(plain.Span[32..]);
        return Envelope.Seal(kek, plain.ReadOnlySpan, BindingContext(NodeId));
    }

    public static NodeIdentity Unseal(uint nodeId, ReadOnlySpan<byte> kek, ReadOnlySpan<byte> sealedIdentity)
    {
        using SecretBuffer plain = Envelope.Open(kek, sealedIdentity, BindingContext(nodeId));
        if (plain.Length != 64)
        {
            throw new EnvelopeException("identity file has the wrong length");
        }

        SoftwareSigningKey signing = SignatureSchemes.Ed25519.ImportPrivateKey(plain.ReadOnlySpan[..32], KeyExportPolicy.AllowExport);
        SecretBuffer agreement = SecretBuffer.CopyFrom(plain.ReadOnlySpan[32..], SecretMemoryKind.Guarded);
        return new NodeIdentity(nodeId, signing, agreement);
    }

    private static byte[] BindingContext(uint nodeId)
    {
        byte[] id = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(id, nodeId);
        return [.. "conclave/node-identity/v1/"u8, .. id];
    }

    public void Dispose()
    {
        _signing.Dispose();
        _agreementSecret.Dispose();
    }

    public override string ToString() => $"NodeIdentity({NodeId}, {Convert.ToHexStringLower(IdentityPublicKey.Span)})";
}
