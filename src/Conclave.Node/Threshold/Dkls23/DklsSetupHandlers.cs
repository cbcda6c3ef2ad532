using System.Security.Cryptography;
using Conclave.Crypto.Memory;
using Conclave.Node.Config;
using Conclave.Node.Protocol;
using Conclave.Node.Threshold.Engine;
using Conclave.Storage.Audit;
using Conclave.Storage.Keys;
using Conclave.Storage.Rotation;
using Conclave.Threshold.Dkls23;
using Conclave.Threshold.Frost;
using Conclave.Threshold.Frost.Ciphersuites;

namespace Conclave.Node.Threshold.Dkls23;

/// <summary>
/// DKLs23 key generation on a node, after the FROST DKG of the same run (<see cref="IDkgFollowUp"/>: the DKG handlers
/// hand over the completed secp256k1 share instead of storing it): the pairwise setup of DKLs23 section 3 in both
/// directions with every peer (<see cref="DklsSetup"/>: base OTs, OT-extension seeds, zero-share seeds by commit then
/// open, and a comparison of the public key package digests), each message sealed to its peer. The DKG session id (the
/// run id) is bound into the key, the setup runs under its own session id derived from it. At the finish step the key
/// share and its pairwise state are stored pending under the node KEK (<see cref="DklsKeyShare.Export"/>) and the run is
/// recorded Prepared with the public key as its result, before that result leaves the node; commit and retire are the
/// engine's (<see cref="RotationHandlers"/>).
/// </summary>
public sealed class DklsSetupHandlers(DklsNodeState state, ClusterManifest manifest) : IProtocolHandler, IDkgFollowUp
{
    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(5);
    private readonly SessionTable<SetupRun> _runs = new(SessionLifetime);

    public IReadOnlyCollection<string> Kinds { get; } = [DklsMessages.SetupStart, DklsMessages.SetupRound2, DklsMessages.SetupFinish];

    public bool Handles(string scheme) => scheme == DklsScheme.Name;

    public FrostCiphersuite Suite => DklsTransport.Suite;

    public void Hold(string runId, string keyId, int toVersion, KeyPackage share)
    {
        ArgumentNullException.ThrowIfNull(share);
        _runs.Sweep();
        var run = new SetupRun(keyId, toVersion) { Share = share };
        if (!_runs.TryAdd(runId, run))
        {
            run.Dispose();
            throw new ProtocolException("this run already holds a share");
        }
    }

    /// <summary>Forgets a run's in-memory state (abort, commit).</summary>
    internal void Drop(string runId) => _runs.Drop(runId);

    public async ValueTask<IReadOnlyList<OutgoingMessage>> HandleAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _runs.Sweep();
        return await DklsTransport.Refuse<IReadOnlyList<OutgoingMessage>>(async () => context.Request.Kind switch
        {
            DklsMessages.SetupStart => Start(context),
            DklsMessages.SetupRound2 => Round2(context),
            DklsMessages.SetupFinish => await FinishAsync(context, cancellationToken).ConfigureAwait(false),
            _ => throw new ProtocolException($"unknown kind {context.Request.Kind}"),
        }, () => _runs.Drop(SessionTable<SetupRun>.RunId(context.SessionId))).ConfigureAwait(false);
    }

    private List<OutgoingMessage> Start(StepContext ctx)
    {
        var r = new PayloadReader(ctx.Request.Payload.Span);
        string keyId = r.String("keyId");
        r.End();
        SetupRun run = _runs.Get(ctx.SessionId);
        if (run.KeyId != keyId)
        {
            throw new ProtocolException($"run {SessionTable<SetupRun>.RunId(ctx.SessionId)} is of another key");
        }

        using KeyPackage share = Interlocked.Exchange(ref run.Share, null) ?? throw new ProtocolException("the pairwise setup of this run already started");
        (DklsSetupState setup, IReadOnlyList<DklsMessage> messages) = DklsSetup.Start(share, ctx.SessionId, DklsMessages.SetupSessionId(ctx.SessionId));
        run.Setup = setup;
        return DklsTransport.Seal(ctx, manifest, state.NodeId, DklsMessages.SetupMessage, 1, messages);
    }

    private List<OutgoingMessage> Round2(StepContext ctx)
    {
        SetupRun run = _runs.Get(ctx.SessionId);
        DklsSetupState setup = run.Setup ?? throw new ProtocolException("this node has no pairwise setup state for the session");
        if (Interlocked.Exchange(ref run.Round2Done, 1) != 0)
        {
            throw new ProtocolException("setup round two was already computed");
        }

        List<DklsMessage> incoming = DklsTransport.Open(ctx, manifest, state.NodeId, DklsMessages.SetupMessage, 1);
        IReadOnlyList<DklsMessage> messages = DklsSetup.Round2(setup, incoming);
        return DklsTransport.Seal(ctx, manifest, state.NodeId, DklsMessages.SetupMessage, 2, messages);
    }

    private async Task<IReadOnlyList<OutgoingMessage>> FinishAsync(StepContext ctx, CancellationToken ct)
    {
        string runId = SessionTable<SetupRun>.RunId(ctx.SessionId);
        SetupRun run = _runs.Get(ctx.SessionId);
        List<DklsMessage> incoming = DklsTransport.Open(ctx, manifest, state.NodeId, DklsMessages.SetupMessage, 2);
        DklsSetupState setup = Interlocked.Exchange(ref run.Setup, null) ?? throw new ProtocolException("this node has no pairwise setup state for the session");
        using DklsKeyShare share = DklsSetup.Finish(setup, incoming);
        DklsPublicKey pub = share.Public;
        byte[] result = pub.ToBytes();
        using (SecretBuffer material = share.Export())
        {
            // First phase: the share is stored pending (a new key); it signs only after the run's commit.
            await state.Store.Keys.CreateAsync(
                new NewKey(run.KeyId, run.KeyId, DklsScheme.Name, pub.GroupPublicKey, pub.Threshold, pub.ParticipantCount)
                { InitialVersion = run.ToVersion, InitialState = KeyState.Pending },
                material, ct).ConfigureAwait(false);
        }

        await state.Store.Rotations.TransitionAsync(runId, RotationState.Started, RotationState.Prepared, result, cancellationToken: ct).ConfigureAwait(false);
        await state.Store.Audit.AppendAsync(new AuditEntryInput("coordinator", "dkls.keygeneration.prepared", run.KeyId,
            SHA256.HashData(ctx.Request.Payload.Span), "allow", $"run {runId} version {run.ToVersion} pending"), ct).ConfigureAwait(false);
        _runs.Drop(runId);
        return [new OutgoingMessage(DklsMessages.SetupDone, 3, [0], new PayloadWriter().U32((uint)run.ToVersion).Bytes(result).ToArray())];
    }

    private sealed class SetupRun(string keyId, int toVersion) : IDisposable
    {
        public string KeyId { get; } = keyId;

        public int ToVersion { get; } = toVersion;

        public KeyPackage? Share;

        public DklsSetupState? Setup;

        public int Round2Done;

        public void Dispose()
        {
            Interlocked.Exchange(ref Share, null)?.Dispose();
            Interlocked.Exchange(ref Setup, null)?.Dispose();
        }
    }
}
