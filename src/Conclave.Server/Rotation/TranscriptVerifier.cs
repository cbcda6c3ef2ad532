using System.Globalization;
using Conclave.Crypto;
using Conclave.Node.Config;
using Conclave.Node.Frost;
using Conclave.Node.Protocol;
using Conclave.Node.Rpc;
using Conclave.Node.Threshold.Dkls23;
using Conclave.Node.Threshold.Engine;
using Conclave.Node.Threshold.Sharing;
using Conclave.Threshold;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;

namespace Conclave.Server.Rotation;

/// <summary>The outcome of <see cref="TranscriptVerifier.Verify"/>: <see cref="Ok"/>, or the reason the transcript is refused.</summary>
public sealed record TranscriptCheck(bool Ok, string Reason);

/// <summary>
/// Checks a rotation transcript offline, with public data only (the transcript and the cluster manifest's node identity
/// keys), as an auditor would (docs/ROTATION.md "Verifying a rotation"): every broadcast and confirmation is signed by
/// the node it names under its pinned identity key and belongs to this run (session id = run id); each dealer broadcast
/// once; the run's public checks hold (<see cref="Dkg.VerifyPublicRun"/>: proofs of knowledge, zero constant terms of
/// refresh polynomials, reshare constant terms, group key unchanged, every new verifying share matching the
/// commitments); and every receiver confirmed the same new public key package. A repair transcript is checked by
/// its own rules (<see cref="VerifyRepair"/>). An ecdsa-dkls23 transcript is checked as the FROST DKG on secp256k1 it
/// ran (its DKLs23 public keys read as frost-secp256k1 packages), then by <see cref="VerifyPairwiseSetup"/>.
/// </summary>
public static class TranscriptVerifier
{
    public static TranscriptCheck Verify(RotationTranscript transcript, ClusterManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(transcript);
        ArgumentNullException.ThrowIfNull(manifest);
        try
        {
            return VerifyCore(transcript, manifest);
        }
        catch (Exception e) when (e is FormatException or CryptoFormatException or ArgumentException or ThresholdProtocolException or DklsProtocolException
            or Google.Protobuf.InvalidProtocolBufferException or ProtocolException or OverflowException)
        {
            return new TranscriptCheck(false, "malformed transcript: " + e.Message);
        }
    }

    private static TranscriptCheck VerifyCore(RotationTranscript t, ClusterManifest manifest)
    {
        if (t.Format != RotationTranscript.CurrentFormat)
        {
            return Fail($"unknown transcript format {t.Format}");
        }

        // A DKLs23 key is made, refreshed and reshared by the FROST DKG on secp256k1 (docs/DKLS23.md "On the cluster").
        bool dkls = t.Scheme == DklsScheme.Name;
        FrostCiphersuite? suite = dkls ? FrostCiphersuite.Secp256k1Sha256 : FrostCiphersuite.TryGet(t.Scheme, out FrostCiphersuite? s) ? s : null;
        if (suite is null)
        {
            return Fail($"unknown scheme {t.Scheme}");
        }

        if (!dkls && t.SetupReports is not null)
        {
            return Fail($"a {t.Scheme} run has no pairwise setup, yet the transcript holds setup reports");
        }

        byte[] runId = Convert.FromHexString(t.RunId);
        if (runId.Length != EnvelopeSigner.SessionIdSizeInBytes)
        {
            return Fail("the run id is not a 32-byte session id");
        }

        if (t.Kind == "repair")
        {
            return dkls ? VerifyDklsRepair(t, suite, runId, manifest) : VerifyRepair(t, suite, runId, Convert.FromHexString(t.NewPublicKeyPackage), manifest);
        }

        // The packages as the DKG saw them: a DKLs23 public key reads as the frost-secp256k1 package it was built from.
        DklsPublicKey? oldDkls = dkls && t.OldPublicKeyPackage is { } od ? DklsPublicKey.FromBytes(Convert.FromHexString(od)) : null;
        DklsPublicKey? newDkls = dkls ? DklsPublicKey.FromBytes(Convert.FromHexString(t.NewPublicKeyPackage)) : null;
        PublicKeyPackage? old = dkls ? oldDkls?.ToFrostPublicKeyPackage()
            : t.OldPublicKeyPackage is { } o ? PublicKeyPackage.FromBytes(suite, Convert.FromHexString(o)) : null;
        byte[] newBytes = newDkls?.ToFrostPublicKeyPackage().ToBytes() ?? Convert.FromHexString(t.NewPublicKeyPackage);
        var result = PublicKeyPackage.FromBytes(suite, newBytes);
        Identifier[] dealers = [.. t.Dealers.Select(d => Identifier.FromInt(suite, checked((int)d)))];
        Identifier[] receivers = [.. t.Receivers.Select(r => Identifier.FromInt(suite, checked((int)r)))];
        DkgSession session;
        switch (t.Kind)
        {
            case "key-generation":
                if (!t.Dealers.SequenceEqual(t.Receivers))
                {
                    return Fail("in key generation every participant deals and receives");
                }

                session = DkgSession.ForKeyGeneration(suite, runId, t.Threshold, receivers);
                break;
            case "refresh" when old is not null:
                session = DkgSession.ForRefresh(runId, old);
                break;
            case "reshare" when old is not null:
                session = DkgSession.ForReshare(runId, old, dealers, t.Threshold, receivers);
                break;
            case "refresh" or "reshare":
                return Fail($"a {t.Kind} transcript needs the old public key package");
            default:
                return Fail($"unknown run kind {t.Kind}");
        }

        if (t.ToVersion != (t.Kind == "key-generation" ? 1 : t.FromVersion + 1))
        {
            return Fail($"version {t.ToVersion} does not follow version {t.FromVersion}");
        }

        var broadcasts = new List<DkgRound1Package>();
        foreach (string hex in t.Broadcasts)
        {
            Envelope e = Envelope.Parser.ParseFrom(Convert.FromHexString(hex));
            if (CheckEnvelope(e, runId, FrostMessages.DkgRound1, t.Dealers, manifest, "broadcast") is { } bad)
            {
                return Fail(bad);
            }

            DkgRound1Package p = DkgRound1Package.FromBytes(suite, e.Payload.Span);
            if (!p.Sender.Equals(Identifier.FromInt(suite, checked((int)e.Sender))))
            {
                return Fail($"node {e.Sender} signed a broadcast in the name of participant {p.Sender}");
            }

            broadcasts.Add(p);
        }

        DkgPublicCheck check = Dkg.VerifyPublicRun(session, broadcasts, result);
        if (!check.Ok)
        {
            return Fail(check.Reason);
        }

        var confirmed = new HashSet<uint>();
        foreach (string hex in t.Confirmations)
        {
            Envelope e = Envelope.Parser.ParseFrom(Convert.FromHexString(hex));
            if (CheckEnvelope(e, runId, FrostMessages.DkgConfirm, t.Receivers, manifest, "confirmation") is { } bad)
            {
                return Fail(bad);
            }

            var r = new PayloadReader(e.Payload.Span);
            _ = r.Bytes("confirmation");
            byte[] package = r.Bytes("publicKeyPackage").ToArray();
            r.End();
            if (!package.AsSpan().SequenceEqual(newBytes))
            {
                return Fail($"node {e.Sender} confirmed another public key package than the transcript's new one");
            }

            if (!confirmed.Add(e.Sender))
            {
                return Fail($"two confirmations from node {e.Sender}");
            }
        }

        uint[] silent = [.. t.Receivers.Where(n => !confirmed.Contains(n))];
        if (silent.Length > 0)
        {
            return Fail($"node {Nodes(silent)} did not confirm the new key");
        }

        if (newDkls is null)
        {
            return new TranscriptCheck(true, "ok");
        }

        // The DKLs23 part (docs/DKLS23.md "Rotation transcripts"); the DKG part was checked on the frost-secp256k1 form of
        // the keys, so the new key's verifying shares, group key and chain code are the DKG's. The new key is bound to the
        // right DKG session id (the run id for key generation, the old key's otherwise) and epoch (0, or the old epoch + 1,
        // so presignatures of the old pairwise state are refused).
        if (!newDkls.DkgSessionId.AsSpan().SequenceEqual(oldDkls?.DkgSessionId ?? runId))
        {
            return Fail(oldDkls is null ? "the new key is not bound to this run's DKG session id" : "the new key's DKG session id is not the old key's");
        }

        uint epoch = oldDkls is null ? 0 : checked(oldDkls.Epoch + 1);
        return newDkls.Epoch != epoch ? Fail($"the new key's epoch is {newDkls.Epoch}, not {epoch}") : VerifyPairwiseSetup(t, runId, t.Receivers, manifest);
    }

    /// <summary>
    /// A repair of an ecdsa-dkls23 key (docs/DKLS23.md "Repair"): the FROST repair checks (<see cref="VerifyRepair"/>) on
    /// the frost-secp256k1 form of the unchanged key; every other holder of the key helped (the repaired node ran a new
    /// pairwise setup with each of them); and every holder reported the unchanged key from that setup.
    /// </summary>
    private static TranscriptCheck VerifyDklsRepair(RotationTranscript t, FrostCiphersuite suite, byte[] runId, ClusterManifest manifest)
    {
        DklsPublicKey key = DklsPublicKey.FromBytes(Convert.FromHexString(t.NewPublicKeyPackage));
        TranscriptCheck repair = VerifyRepair(t, suite, runId, key.ToFrostPublicKeyPackage().ToBytes(), manifest);
        if (!repair.Ok)
        {
            return repair;
        }

        uint[] holders = [.. key.Participants.Select(FrostNodeIds.ToNode).Order()];
        return holders.SequenceEqual([.. t.Dealers.Append(t.Receivers[0]).Order()])
            ? VerifyPairwiseSetup(t, runId, holders, manifest)
            : Fail("an ecdsa-dkls23 repair needs every other holder of the key as a helper");
    }

    /// <summary>
    /// Every node of <paramref name="reporters"/> signed exactly one report (<c>dkls.setup.done</c>) of the transcript's new
    /// key at its new version: the key share it stored pending at the end of the run's pairwise setup (DKLs23, ePrint
    /// 2023/765, section 3) is a share of this key.
    /// </summary>
    private static TranscriptCheck VerifyPairwiseSetup(RotationTranscript t, byte[] runId, IReadOnlyList<uint> reporters, ClusterManifest manifest)
    {
        if (t.SetupReports is null)
        {
            return Fail("an ecdsa-dkls23 transcript needs every receiver's pairwise-setup report");
        }

        byte[] expected = Convert.FromHexString(t.NewPublicKeyPackage);
        var reported = new HashSet<uint>();
        foreach (string hex in t.SetupReports)
        {
            Envelope e = Envelope.Parser.ParseFrom(Convert.FromHexString(hex));
            if (CheckEnvelope(e, runId, DklsMessages.SetupDone, reporters, manifest, "setup report") is { } bad)
            {
                return Fail(bad);
            }

            var r = new PayloadReader(e.Payload.Span);
            int version = (int)r.U32("version");
            byte[] reportedKey = r.Bytes("publicKey").ToArray();
            r.End();
            if (version != t.ToVersion || !reportedKey.AsSpan().SequenceEqual(expected))
            {
                return Fail($"node {e.Sender} reported another key or version from the pairwise setup than the transcript's new one");
            }

            if (!reported.Add(e.Sender))
            {
                return Fail($"two setup reports from node {e.Sender}");
            }
        }

        uint[] silent = [.. reporters.Where(n => !reported.Contains(n))];
        return silent.Length > 0 ? Fail($"node {Nodes(silent)} did not report the key of the pairwise setup") : new TranscriptCheck(true, "ok");
    }

    private static string Nodes(IEnumerable<uint> nodes) => string.Join(", ", nodes.Select(n => n.ToString(CultureInfo.InvariantCulture)));

    /// <summary>
    /// A repair transcript (docs/ROTATION.md "Verifying a rotation"): the key's package is unchanged and the version too;
    /// every helper (at least t, holders of the key, not the repaired node) signed one contribution naming this key,
    /// version, repaired node, helper set and package; the repaired node signed one confirmation naming the same key,
    /// version and package, with the hash of exactly each helper's sealed σ as the helper stated it, and a valid proof of
    /// knowledge of the share behind its verifying share (<see cref="Repair.VerifyPublicRun"/>).
    /// </summary>
    private static TranscriptCheck VerifyRepair(RotationTranscript t, FrostCiphersuite suite, byte[] runId, byte[] packageBytes, ClusterManifest manifest)
    {
        if (t.OldPublicKeyPackage is null || !string.Equals(t.OldPublicKeyPackage, t.NewPublicKeyPackage, StringComparison.OrdinalIgnoreCase))
        {
            return Fail("a repair must leave the public key package unchanged");
        }

        if (t.ToVersion != t.FromVersion || t.FromVersion < 1)
        {
            return Fail($"a repair keeps the key's version; this one goes from {t.FromVersion} to {t.ToVersion}");
        }

        if (t.Receivers.Count != 1)
        {
            return Fail("a repair rebuilds the share of exactly one node");
        }

        var package = PublicKeyPackage.FromBytes(suite, packageBytes);
        if (t.Threshold != package.Threshold)
        {
            return Fail("the threshold differs from the key's");
        }

        byte[] packageHash = RepairEvidence.PackageHash(packageBytes);
        uint lost = t.Receivers[0];
        var sigmaByHelper = new Dictionary<uint, byte[]>();
        foreach (string hex in t.Broadcasts)
        {
            Envelope e = Envelope.Parser.ParseFrom(Convert.FromHexString(hex));
            if (CheckEnvelope(e, runId, FrostMessages.RepairContributed, t.Dealers, manifest, "contribution") is { } bad)
            {
                return Fail(bad);
            }

            RepairContribution c = RepairEvidence.ReadContribution(e.Payload.Span);
            if (c.KeyId != t.KeyId || c.Version != t.FromVersion || c.Lost != lost || !c.Helpers.SequenceEqual(t.Dealers) || !c.PackageHash.AsSpan().SequenceEqual(packageHash))
            {
                return Fail($"helper {e.Sender}'s contribution names another key, version, repaired node, helper set or package");
            }

            if (!sigmaByHelper.TryAdd(e.Sender, c.SealedSigmaHash))
            {
                return Fail($"two contributions from helper {e.Sender}");
            }
        }

        uint[] silent = [.. t.Dealers.Where(h => !sigmaByHelper.ContainsKey(h))];
        if (silent.Length > 0)
        {
            return Fail($"no contribution from helper {string.Join(", ", silent.Select(n => n.ToString(CultureInfo.InvariantCulture)))}");
        }

        if (t.Confirmations.Count != 1)
        {
            return Fail($"a repair needs exactly one confirmation, from node {lost}");
        }

        Envelope done = Envelope.Parser.ParseFrom(Convert.FromHexString(t.Confirmations[0]));
        if (CheckEnvelope(done, runId, FrostMessages.RepairDone, t.Receivers, manifest, "confirmation") is { } wrong)
        {
            return Fail(wrong);
        }

        RepairConfirmation confirmation = RepairEvidence.ReadConfirmation(done.Payload.Span);
        if (confirmation.KeyId != t.KeyId || confirmation.Version != t.FromVersion || !confirmation.PackageHash.AsSpan().SequenceEqual(packageHash))
        {
            return Fail($"node {lost}'s confirmation names another key, version or package");
        }

        if (confirmation.SealedSigmaHashes.Count != sigmaByHelper.Count
            || sigmaByHelper.Any(kv => !confirmation.SealedSigmaHashes.TryGetValue(kv.Key, out byte[]? h) || !h.AsSpan().SequenceEqual(kv.Value)))
        {
            return Fail($"node {lost} combined other σ values than the helpers state they sent");
        }

        DkgPublicCheck check = Repair.VerifyPublicRun(package, [.. t.Dealers.Select(h => Identifier.FromInt(suite, checked((int)h)))],
            Identifier.FromInt(suite, checked((int)lost)), runId, confirmation.Proof);
        return check.Ok ? new TranscriptCheck(true, "ok") : Fail(check.Reason);
    }

    /// <summary>The envelope's kind, run and sender are the expected ones and it is signed by the sender's pinned identity key; else the reason.</summary>
    private static string? CheckEnvelope(Envelope e, byte[] runId, string kind, IReadOnlyList<uint> senders, ClusterManifest manifest, string what)
    {
        if (e.Kind != kind)
        {
            return $"a {what} of kind '{e.Kind}'";
        }

        if (!e.SessionId.Span.SequenceEqual(runId))
        {
            return $"node {e.Sender}'s {what} belongs to another run";
        }

        if (!senders.Contains(e.Sender))
        {
            return $"a {what} from node {e.Sender}, who has no part in it in this run";
        }

        ClusterNode? node = manifest.Nodes.FirstOrDefault(n => n.Id == e.Sender);
        if (node is null)
        {
            return $"node {e.Sender} is not in the manifest";
        }

        // The key the node had when it sent the message: its current identity key, or a retired one whose overlap had not
        // ended at the message's issue time (docs/ROTATION.md "Rotating a node's identity").
        return manifest.IdentityKeysAt(e.Sender, e.IssuedAtUnixMs).Any(k => EnvelopeSigner.VerifyRecorded(e, k)) ? null : $"node {e.Sender}'s {what} is not signed by its identity key";
    }

    private static TranscriptCheck Fail(string reason) => new(false, reason);
}
