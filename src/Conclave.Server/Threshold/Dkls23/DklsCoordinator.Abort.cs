using Conclave.Node.Threshold.Dkls23;
using Conclave.Server.Coordinator;
using Conclave.Server.Threshold.Engine;

namespace Conclave.Server.Threshold.Dkls23;

/// <summary>
/// Ending a failed signing attempt at once: when an attempt gives up (a signer failed in transport or refused) or ends
/// with a culprit, the coordinator sends <c>dkls.sign.abort</c> for the attempt's session to every signer of it, so those
/// still running it drop its round state and free their per-peer session slots now rather than at the two-minute sweep.
/// </summary>
public sealed partial class DklsCoordinator
{
    /// <summary>One signing attempt under a fresh session id; unless it returned a signature, its session is aborted on every signer.</summary>
    private async Task<DklsSignatureResult?> SignOrAbortAsync(DklsKeyInfo key, IReadOnlyList<uint> quorum, QuorumCall call, byte[] digest, IReadOnlyList<uint> path, CancellationToken ct)
    {
        byte[] session = Cluster.NewSessionId();
        DklsSignatureResult? result = null;
        try
        {
            result = await SignAttemptAsync(key, quorum, call, session, digest, path, ct).ConfigureAwait(false);
            return result;
        }
        finally
        {
            if (result is null)
            {
                await AbortSessionAsync(quorum, session).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Tells every node of <paramref name="signers"/> to drop signing session <paramref name="session"/> (best effort,
    /// bounded by one round timeout: a node that is down or slow keeps the session until its sweep).
    /// </summary>
    internal async Task AbortSessionAsync(IReadOnlyList<uint> signers, byte[] session)
    {
        using var cts = new CancellationTokenSource(_cluster.RoundTimeout);
        await Task.WhenAll(signers.Select(async n =>
        {
            try
            {
                await _cluster.Node(n).StepAsync(_cluster.Request(session, DklsMessages.SignAbort, 4, [n], []), [], _cluster.RoundTimeout, cts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NodeCallException or OperationCanceledException)
            {
                // Down, slow or it never had the session: its sweep frees the slot.
            }
        })).ConfigureAwait(false);
    }
}
