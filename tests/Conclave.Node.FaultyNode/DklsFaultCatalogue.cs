using Conclave.Crypto.Secp256k1;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Dkls23;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Dkls23.Ot;
using Conclave.Threshold.Dkls23.Vole;
using static Conclave.Testing.DklsTamper;

namespace Conclave.Node.FaultyNode;

/// <summary>
/// The DKLs23 signing and pairwise-setup faults this test host can inject (--dkls-fault NAME), one per check of
/// docs/DKLS23.md "Every check, and what a party does when it fails": each edits a real message (or presignature) this
/// node computed, before the node seals and signs it, as DklsAttackTests does in process. The name says which check an honest peer (or the coordinator) must fail.
/// </summary>
internal static class DklsFaultCatalogue
{
    public static IReadOnlyCollection<string> Names => Faults.Keys;

    public static DklsFaults? For(string name) => Faults.TryGetValue(name, out Func<DklsFaults>? make) ? make() : null;

    private static readonly Dictionary<string, Func<DklsFaults>> Faults = new(StringComparer.Ordinal)
    {
        // SoftSpokenOT (ePrint 2022/192) with inconsistent choice columns: row 5's choice bit flipped in half of the κ columns
        // u_k of every OT-extension message this node sends as Bob, so that row has no single choice bit. The peer's
        // consistency check of section 4 fails (OtExtensionConsistency): this node banned until a fresh pairwise setup.
        // Round-one body: commitment (32) ‖ Bob's VOLE nonce (32) ‖ u_0 … u_{κ−1} (88 bytes each) ‖ x̃ ‖ t̃.
        ["ot-columns"] = () => new DklsFaults
        {
            Round1 = (_, m) => Edit(m, b =>
            {
                for (int k = 0; k < SoftSpokenOt.Kappa / 2; k++)
                {
                    b[64 + (k * SoftSpokenOt.RowBytes)] ^= 0x20;
                }
            }),
        },

        // RVOLE (Protocol 5.2): one τ value, or the check element μ, changed: the peer's check value fails (RvoleCheck).
        ["rvole-tau"] = () => new DklsFaults { Round2 = m => Edit(m, b => b[TauOffset + 31] ^= 0x01) },
        ["rvole-mu"] = () => new DklsFaults { Round2 = m => Edit(m, b => b[^33] ^= 0x01) },

        // Γ^u or Γ^v shifted by G: the Γ checks of round three fail (GammaUCheck, GammaVCheck).
        ["gamma-u"] = () => new DklsFaults { Round2 = m => Edit(m, b => AddG(b, GammaUOffset)) },
        ["gamma-v"] = () => new DklsFaults { Round2 = m => Edit(m, b => AddG(b, GammaVOffset)) },

        // Commits to (pairwise and broadcast) and opens R_i + G: every opening matches, Γ^u is inconsistent with it (GammaUCheck).
        ["r-shifted"] = () => new DklsFaults
        {
            Round1 = (s, m) => Edit(m, b => DklsSigner.Commit(s.Peek().Bound, s.Identifier, m.To, s.Peek().BigR + Secp256k1Point.Generator, s.Peek().Salt).CopyTo(b, 0)),
            Broadcast = (s, _) => Recommit(s, s.Peek().BigR + Secp256k1Point.Generator, s.Peek().Pk),
            Round2 = m => Edit(m, b => AddG(b, 0)),
        },

        // Commits to (broadcast) and opens pk_i + G, so Σ pk_j ≠ PK: the opening matches, Γ^v is inconsistent with it (GammaVCheck).
        ["pk-shifted"] = () => new DklsFaults
        {
            Broadcast = (s, _) => Recommit(s, s.Peek().BigR, s.Peek().Pk + Secp256k1Point.Generator),
            Round2 = m => Edit(m, b => AddG(b, PkOffset)),
        },

        // An additive share sk_i + 1 with pk_i + G, committed to and used everywhere: a wrong but self-consistent share. Every
        // opening and Γ check passes, Σ pk_j ≠ PK does not (PublicKeySum), and nobody can be named from one view.
        ["share-shifted"] = () => new DklsFaults
        {
            Broadcast = (s, _) =>
            {
                SignCore core = s.Peek();
                core.Set(SignCore.SkOffset, core.Get(SignCore.SkOffset) + Secp256k1Scalar.One);
                core.Pk += Secp256k1Point.Generator;
                return Recommit(s, core.BigR, core.Pk);
            },
        },

        // Opens R_i + G without committing to it (CommitmentMismatch).
        ["opening"] = () => new DklsFaults { Round2 = m => Edit(m, b => AddG(b, 0)) },

        // Sends each peer, from the second session on, the pairwise commitment to R_i of its previous session with that peer (CommitmentMismatch).
        ["commit-replay"] = () =>
        {
            var previous = new System.Collections.Concurrent.ConcurrentDictionary<string, byte[]>(StringComparer.Ordinal);
            return new DklsFaults
            {
                Round1 = (_, m) =>
                {
                    byte[] real = m.Body[..32];
                    byte[]? old = null;
                    previous.AddOrUpdate(m.To.ToString(), real, (_, before) =>
                    {
                        old = before;
                        return real;
                    });
                    return old is null ? m : Edit(m, b => old.CopyTo(b, 0));
                },
            };
        },

        // In a session of three or more signers, sends each peer the pairwise commitment to R_i it made for another peer (the
        // first other one in the signer set), bound to that pair (DKLs23 Protocol 3.6 round one: the commitment binds sid,
        // sender and recipient). The peer's check of the opening against the commitment it got fails (CommitmentMismatch,
        // naming this node). With one peer there is no other pair, and the messages leave unchanged.
        ["commit-pair-replay"] = () => new DklsFaults
        {
            Round1 = (s, m) =>
            {
                SignCore core = s.Peek();
                Conclave.Threshold.Frost.Identifier? other = core.Peers.FirstOrDefault(j => !j.Equals(m.To));
                return other is null ? m : Edit(m, b => DklsSigner.Commit(core.Bound, s.Identifier, other, core.BigR, core.Salt).CopyTo(b, 0));
            },
        },

        // Malformed fields: a scalar ≥ n, the point at infinity, a point off the curve, vectors of the wrong length (MalformedMessage).
        ["psi-above-n"] = () => new DklsFaults { Round2 = m => Edit(m, b => b.AsSpan(PsiOffset, 32).Fill(0xFF)) },
        ["tau-n"] = () => new DklsFaults { Round2 = m => Edit(m, b => Secp256k1Scalar.Order.ToByteArray(isUnsigned: true, isBigEndian: true).CopyTo(b, TauOffset)) },
        ["gamma-infinity"] = () => new DklsFaults { Round2 = m => Edit(m, b => Array.Clear(b, GammaUOffset, 33)) },
        ["gamma-off-curve"] = () => new DklsFaults { Round2 = m => Edit(m, b => OffCurvePoint().CopyTo(b, GammaVOffset)) },
        ["round1-short"] = () => new DklsFaults { Round1 = (_, m) => m.WithBody(m.Body[..^1]) },
        ["round2-long"] = () => new DklsFaults { Round2 = m => m.WithBody([.. m.Body, 0]) },
        ["vole-short"] = () => new DklsFaults { Round2 = m => m.WithBody(m.Body[..(VoleOffset + RandomVole.AliceMessageSize - 32)]) },

        // Pairwise setup (DKLs23 section 3; DklsSetup), round one to every peer: base-OT receiver message ‖ base-OT sender
        // point S ‖ zero-seed commitment ‖ public-key digest. A digest one bit off: the peers' key-package comparison fails
        // (PublicKeyMismatch).
        ["setup-key-digest"] = () => new DklsFaults { SetupRound1 = m => Edit(m, b => b[^1] ^= 0x01) },

        // S + G in place of S: Endemic OT (ePrint 2019/706) carries no proof, so the setup cannot tell; the peer's chosen
        // seeds of that direction are wrong, and the first signing of the pair fails its SoftSpokenOT consistency check
        // (ePrint 2022/192 section 4) on this node's OT-extension message: OtExtensionConsistency, this node banned.
        ["setup-base-ot"] = () => new DklsFaults { SetupRound1 = m => Edit(m, b => AddG(b, EndemicOt.ReceiverMessageSize)) },

        // Round two: a zero-share seed opening one bit off its commitment (SeedCommitmentMismatch).
        ["setup-seed-opening"] = () => new DklsFaults { SetupRound2 = m => Edit(m, b => b[0] ^= 0x01) },

        // A round-one message header naming party 0, or n (≡ 0 mod n), as its sender or recipient: no such party exists
        // (identifiers are nonzero scalars below n), so the peer cannot read the message (InvalidParticipant); it is sealed
        // and signed by this node, which is named, and nobody is banned. Header: version, kind, session id length (1 byte
        // each), session id, from (32), to (32).
        ["header-from-zero"] = () => new DklsFaults { Wire = w => EditedWire(w, 0, new byte[32]) },
        ["header-to-n"] = () => new DklsFaults { Wire = w => EditedWire(w, 32, Secp256k1Scalar.Order.ToByteArray(isUnsigned: true, isBigEndian: true)) },

        // Keeps the secrets (u_i, v_i, φ_i) of the first pooled presignature it signs with and signs every later online round
        // with them again, for the new digest: a reused presignature. Its share is for R of the first session, so the
        // signers report different R and the coordinator forms no signature (naming nobody: from R alone it cannot tell
        // which signer lies).
        ["presign-reuse"] = () =>
        {
            (Conclave.Threshold.Frost.Identifier Me, DklsSigningContext Context, Secp256k1Scalar U, Secp256k1Scalar V, Secp256k1Scalar Phi)? kept = null;
            return new DklsFaults
            {
                OnlinePresignature = taken =>
                {
                    if (kept is not { } k)
                    {
                        (Secp256k1Scalar u, Secp256k1Scalar v, Secp256k1Scalar phi) = taken.Consume();
                        kept = (taken.Identifier, taken.Context, u, v, phi);
                        taken.Dispose();
                        return new DklsPresignature(kept.Value.Me, kept.Value.Context, u, v, phi);
                    }

                    taken.Dispose();
                    return new DklsPresignature(k.Me, k.Context, k.U, k.V, k.Phi);
                },
            };
        },

        // Envelopes of one kind returned with their signature's last bit flipped, over node 4's own authenticated connection.
        // The coordinator takes the signing replies it relays without verifying their signatures (docs/ARCHITECTURE.md
        // "Reply signatures on the signing path"), so it is the recipient of a relayed one that refuses it, naming nobody;
        // the coordinator then names node 4, whose own connection carried a message not validly signed by it.
        // "envelope-share": round three's answer, which nobody relays: the coordinator verifies it on arrival and names node 4.
        ["envelope-key"] = () => BadlySigned(DklsMessages.SignAgreementKey),
        ["envelope-commit"] = () => BadlySigned(DklsMessages.SignCommit),
        ["envelope-message"] = () => BadlySigned(DklsMessages.SignMessage),
        ["envelope-echo"] = () => BadlySigned(DklsMessages.SignEcho),
        ["envelope-share"] = () => BadlySigned(DklsMessages.Share),

        // The final share (u_i, w_i) with u_i changed: the combined signature does not verify (InvalidSignature), nothing is released.
        ["share-u"] = () => new DklsFaults { Share = s => Edited(s, b => b[^33] ^= 0x01) },
    };

    /// <summary>Flips the last bit of the signature of every envelope of <paramref name="kind"/> this node returns.</summary>
    private static DklsFaults BadlySigned(string kind) => new()
    {
        SignedEnvelope = e =>
        {
            if (e.Kind != kind)
            {
                return e;
            }

            Envelope copy = e.Clone();
            byte[] signature = copy.Signature.ToByteArray();
            signature[^1] ^= 0x01;
            copy.Signature = Google.Protobuf.ByteString.CopyFrom(signature);
            return copy;
        },
    };

    /// <summary>
    /// The broadcast commitment to (R, pk) instead of (R_i, pk_i), also kept as this node's own in its round-one state, so
    /// that its echo agrees with what it sent: a consistent liar, which the echo cannot catch and the checks of round three must.
    /// </summary>
    private static byte[] Recommit(DklsSignRound1State s, Secp256k1Point r, Secp256k1Point pk)
    {
        byte[] c = DklsSigner.CommitToAll(s.Peek().Bound, s.Identifier, r, pk, s.Peek().Salt);
        s.Peek().TheirBroadcasts[s.Identifier] = [.. c];
        return c;
    }

    /// <summary>The encoded message with <paramref name="value"/> at <paramref name="offset"/> past the session id (0: from, 32: to).</summary>
    private static byte[] EditedWire(byte[] wire, int offset, byte[] value) => Edited(wire, b => value.CopyTo(b, 3 + b[2] + offset));

    private static DklsMessage Edit(DklsMessage m, Action<byte[]> edit) => m.WithBody(Edited(m.Body, edit));

    private static byte[] Edited(byte[] original, Action<byte[]> edit)
    {
        byte[] copy = (byte[])original.Clone();
        edit(copy);
        return copy;
    }
}
