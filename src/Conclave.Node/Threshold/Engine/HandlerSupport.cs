using Conclave.Crypto;
using Conclave.Crypto.Aead;
using Conclave.Crypto.Memory;
using Conclave.Node.Protocol;
using Conclave.Storage;
using Conclave.Threshold;

namespace Conclave.Node.Threshold.Engine;

/// <summary>
/// What every protocol's handlers (FROST, the sharing rounds, DKLs23, the rotation steps) share: turning library failures
/// into protocol refusals, and sealed point-to-point messages.
/// </summary>
internal static class HandlerSupport
{
    /// <summary>
    /// Runs a step; a threshold failure becomes a refusal naming the first culprit, malformed input or a store
    /// failure a plain refusal. <paramref name="onFailure"/> runs first (for example to drop the session's state).
    /// </summary>
    public static async ValueTask<T> RefuseOnFailure<T>(Func<ValueTask<T>> step, Action? onFailure = null)
    {
        try
        {
            return await step().ConfigureAwait(false);
        }
        catch (ThresholdProtocolException e)
        {
            onFailure?.Invoke();
            throw new ProtocolException(e.Message, e.Culprits.Count > 0 ? FrostNodeIds.ToNode(e.Culprits[0]) : null);
        }
        catch (CryptoFormatException e)
        {
            onFailure?.Invoke();
            throw new ProtocolException(e.Message);
        }
        catch (ArgumentException e)
        {
            onFailure?.Invoke();
            throw new ProtocolException(e.Message);
        }
        catch (StorageException e)
        {
            onFailure?.Invoke();
            throw new ProtocolException($"node store: {e.Message}");
        }
        catch (ProtocolException)
        {
            onFailure?.Invoke();
            throw;
        }
    }

    /// <summary>
    /// Seals a secret to a peer's run agreement key from this node's (<see cref="RunAgreementKey"/>: ephemeral-ephemeral
    /// X25519 + HKDF-SHA256 over <paramref name="context"/> and both keys, then XChaCha20-Poly1305). Point-to-point
    /// messages of a run are never sealed to the long-term agreement keys, so they stay closed once the run keys are erased.
    /// </summary>
    public static byte[] SealTo(RunAgreementKey own, byte[] peerRunKey, byte[] context, ReadOnlySpan<byte> plain) =>
        own.SealTo(peerRunKey, context, plain);

    /// <summary>Opens a secret a peer sealed to this node's run agreement key; a failure names the sender.</summary>
    public static SecretBuffer OpenFrom(RunAgreementKey own, byte[] peerRunKey, uint sender, byte[] context, byte[] sealedMessage, string what)
    {
        try
        {
            return own.OpenFrom(peerRunKey, context, sealedMessage);
        }
        catch (EnvelopeException)
        {
            throw new ProtocolException($"the {what} from node {sender} does not open", sender);
        }
    }
}
