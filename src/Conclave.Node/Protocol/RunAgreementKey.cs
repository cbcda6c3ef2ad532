using System.Buffers.Binary;
using System.Text;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Ed25519;
using Conclave.Crypto.Kdf;
using Conclave.Crypto.Memory;
using Conclave.Crypto.Randomness;
using Conclave.Node.Config;

namespace Conclave.Node.Protocol;

/// <summary>
/// A node's ephemeral X25519 key for one run (a DKG, refresh, reshare or repair session): generated when the node joins
/// the run, announced in the run's first round signed by the node's identity key and bound to the run id, the key id
/// and the node id (<see cref="Announcement"/>), used to seal and open the run's point-to-point messages
/// (ephemeral-ephemeral X25519, RFC 7748 section 6.1, then HKDF-SHA256, RFC 5869, over a context naming the run, both
/// nodes and both ephemeral keys), and erased (<see cref="Dispose"/>) as soon as the node sealed and opened everything
/// it must, and at the latest when the run fails, aborts or is swept. The private key lives only in guarded memory
/// (libsodium, mlocked) and is never written to disk, so once it is erased no long-term key, KEK or store opens the
/// run's recorded messages again: forward secrecy for relayed shares.
/// </summary>
public sealed class RunAgreementKey : IDisposable
{
    private static ReadOnlySpan<byte> Domain => "conclave/run-agreement-key/v1"u8;

    private SecretBuffer? _private;

    /// <summary>
    /// X25519(own private key, peer public key) per peer public key (hex), computed at the first message to or from that
    /// peer and reused for the next ones (<see cref="Derive"/>); pinned buffers zeroed when the private key is erased.
    /// </summary>
    private readonly Dictionary<string, SecretBuffer> _shared = new(StringComparer.Ordinal);

    private readonly Lock _gate = new();

    private RunAgreementKey(SecretBuffer privateKey, byte[] publicKey, byte[] announcement)
    {
        _private = privateKey;
        PublicKey = publicKey;
        Announcement = announcement;
    }

    /// <summary>The ephemeral public key (32 bytes).</summary>
    public byte[] PublicKey { get; }

    /// <summary>
    /// The signed announcement sent in the run's first round: node id, key id, run (session) id, public key and the
    /// identity key's Ed25519 signature over all of them (<see cref="Transcript"/>).
    /// </summary>
    public byte[] Announcement { get; }

    /// <summary>True once the private key was erased.</summary>
    public bool IsErased => _private is null;

    /// <summary>Generates a fresh key pair for the run <paramref name="sessionId"/> of key <paramref name="keyId"/>, announced under <paramref name="identity"/>.</summary>
    public static RunAgreementKey Generate(NodeIdentity identity, ReadOnlySpan<byte> sessionId, string keyId, IRandomSource? random = null)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(keyId);
        (SecretBuffer sk, byte[] pk) = X25519.GenerateKeyPair(random ?? HealthCheckedRandomSource.System);
        try
        {
            byte[] signature = identity.Sign(Transcript(sessionId, keyId, identity.NodeId, pk));
            byte[] announcement = new PayloadWriter().U32(identity.NodeId).String(keyId).Bytes(sessionId).Bytes(pk).Bytes(signature).ToArray();
            return new RunAgreementKey(sk, pk, announcement);
        }
        catch
        {
            sk.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks a peer's announcement and returns its ephemeral public key: it must name <paramref name="sender"/> (the
    /// envelope's sender), <paramref name="keyId"/> and <paramref name="sessionId"/> (this run), and carry a valid
    /// signature by the sender's identity key pinned in <paramref name="manifest"/>. Every failure is a refusal naming
    /// the sender.
    /// </summary>
    public static byte[] VerifyAnnouncement(ReadOnlySpan<byte> announcement, ClusterManifest manifest, uint sender, ReadOnlySpan<byte> sessionId, string keyId)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(keyId);
        uint node;
        string announcedKey;
        byte[] announcedSession, pk, signature;
        try
        {
            var r = new PayloadReader(announcement);
            node = r.U32("nodeId");
            announcedKey = r.String("keyId");
            announcedSession = r.Bytes("sessionId", 64).ToArray();
            pk = r.Bytes("publicKey", X25519.KeySizeInBytes).ToArray();
            signature = r.Bytes("signature", 64).ToArray();
            r.End();
        }
        catch (ProtocolException e)
        {
            throw new ProtocolException($"node {sender}'s run agreement key is malformed: {e.Message}", sender);
        }

        if (node != sender)
        {
            throw new ProtocolException($"node {sender}'s run agreement key is announced for node {node}", sender);
        }

        if (!announcedSession.AsSpan().SequenceEqual(sessionId))
        {
            throw new ProtocolException($"node {sender}'s run agreement key is bound to another run", sender);
        }

        if (!string.Equals(announcedKey, keyId, StringComparison.Ordinal))
        {
            throw new ProtocolException($"node {sender}'s run agreement key is bound to another key", sender);
        }

        if (pk.Length != X25519.KeySizeInBytes || signature.Length != 64)
        {
            throw new ProtocolException($"node {sender}'s run agreement key is malformed", sender);
        }

        // The node's current identity key, or a retired one during its overlap (docs/ROTATION.md "Rotating a node's identity").
        IReadOnlyList<byte[]> identityKeys = manifest.AcceptedIdentityKeys(sender, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        if (identityKeys.Count == 0)
        {
            throw new ProtocolException($"node {sender} is not in the cluster manifest", sender);
        }

        byte[] transcript = Transcript(sessionId, keyId, sender, pk);
        if (!identityKeys.Any(k => Ed25519Signature.Instance.Verify(k, transcript, signature)))
        {
            throw new ProtocolException($"node {sender}'s run agreement key is not signed by its identity key", sender);
        }

        return pk;
    }

    /// <summary>
    /// What the identity key signs: domain ‖ len(session) ‖ session ‖ len(key id) ‖ key id ‖ node id ‖ public key, every
    /// variable-length field length-prefixed (big-endian u32).
    /// </summary>
    public static byte[] Transcript(ReadOnlySpan<byte> sessionId, string keyId, uint nodeId, ReadOnlySpan<byte> publicKey)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        byte[] key = Encoding.UTF8.GetBytes(keyId);
        byte[] t = new byte[Domain.Length + 4 + sessionId.Length + 4 + key.Length + 4 + publicKey.Length];
        Span<byte> s = t;
        Domain.CopyTo(s);
        int p = Domain.Length;
        BinaryPrimitives.WriteUInt32BigEndian(s[p..], (uint)sessionId.Length);
        p += 4;
        sessionId.CopyTo(s[p..]);
        p += sessionId.Length;
        BinaryPrimitives.WriteUInt32BigEndian(s[p..], (uint)key.Length);
        p += 4;
        key.CopyTo(s[p..]);
        p += key.Length;
        BinaryPrimitives.WriteUInt32BigEndian(s[p..], nodeId);
        p += 4;
        publicKey.CopyTo(s[p..]);
        return t;
    }

    /// <summary>
    /// The HKDF info (and AEAD associated data) of a message sealed between two run keys: the message's own context
    /// (domain, run, sender, recipient) followed by the sender's and the recipient's ephemeral public keys.
    /// </summary>
    public static byte[] SealingContext(ReadOnlySpan<byte> messageContext, ReadOnlySpan<byte> senderPublicKey, ReadOnlySpan<byte> recipientPublicKey)
        => [.. messageContext, .. senderPublicKey, .. recipientPublicKey];

    /// <summary>Seals <paramref name="plain"/> to a peer's run key (X25519 + HKDF-SHA256, then the AEAD envelope, XChaCha20-Poly1305).</summary>
    public byte[] SealTo(ReadOnlySpan<byte> peerPublicKey, ReadOnlySpan<byte> messageContext, ReadOnlySpan<byte> plain)
    {
        byte[] context = SealingContext(messageContext, PublicKey, peerPublicKey);
        using SecretBuffer k = Derive(peerPublicKey, context);
        return Envelope.Seal(k.ReadOnlySpan, plain, context);
    }

    /// <summary>Opens a message a peer sealed to this run key; throws <see cref="EnvelopeException"/> when it does not open.</summary>
    public SecretBuffer OpenFrom(ReadOnlySpan<byte> peerPublicKey, ReadOnlySpan<byte> messageContext, ReadOnlySpan<byte> sealedMessage)
    {
        byte[] context = SealingContext(messageContext, peerPublicKey, PublicKey);
        using SecretBuffer k = Derive(peerPublicKey, context);
        return Envelope.Open(k.ReadOnlySpan, sealedMessage, context);
    }

    /// <summary>
    /// The message key: HKDF-SHA256 (RFC 5869, empty salt) of the X25519 shared secret with the peer's key, info
    /// <paramref name="context"/> — the same bytes <see cref="X25519.DeriveKey"/> gives. The shared secret of a pair of
    /// run keys is computed once (one X25519 per peer instead of one per message: a signing session seals and opens
    /// two messages each way per peer) and kept, in a pinned buffer, exactly as long as the private key it comes from:
    /// it opens no more than that key opens (only the messages between these two run keys, every one of which has its
    /// own HKDF info naming run, round, sender and recipient), and it is erased with it (<see cref="Dispose"/>), so
    /// forward secrecy ends at the same moment as before. A low-order peer key is refused at its first use, as before.
    /// </summary>
    private SecretBuffer Derive(ReadOnlySpan<byte> peerPublicKey, ReadOnlySpan<byte> context)
    {
        lock (_gate)
        {
            SecretBuffer sk = _private ?? throw new ObjectDisposedException(nameof(RunAgreementKey), "the run agreement key was erased");
            string peer = Convert.ToHexStringLower(peerPublicKey);
            if (!_shared.TryGetValue(peer, out SecretBuffer? shared))
            {
                shared = X25519.SharedSecret(sk.ReadOnlySpan, peerPublicKey);
                _shared.Add(peer, shared);
            }

            var okm = SecretBuffer.Allocate(32);
            try
            {
                System.Security.Cryptography.HKDF.DeriveKey(System.Security.Cryptography.HashAlgorithmName.SHA256, shared.ReadOnlySpan, okm.Span, ReadOnlySpan<byte>.Empty, context);
                return okm;
            }
            catch
            {
                okm.Dispose();
                throw;
            }
        }
    }

    /// <summary>Erases the private key and every shared secret computed with it (idempotent). The public key and announcement stay readable.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            Interlocked.Exchange(ref _private, null)?.Dispose();
            foreach (SecretBuffer shared in _shared.Values)
            {
                shared.Dispose();
            }

            _shared.Clear();
        }
    }

    public override string ToString() => $"RunAgreementKey({Convert.ToHexStringLower(PublicKey)}{(IsErased ? ", erased" : "")})";
}
