using Conclave.Node.Threshold.Engine;
using Conclave.Storage;
using Conclave.Storage.Audit;

namespace Conclave.Server.Hosting;

/// <summary>A signature share a node's log records and the server's log does not explain.</summary>
public sealed record UnexplainedShare(long NodeSeq, DateTimeOffset Time, string KeyId, string Round, string MessageHash);

/// <summary>The outcome for one node: its own log's verification, how many shares it recorded, which are unexplained.</summary>
public sealed record NodeReconciliation(string Node, AuditVerificationResult Verification, int Shares, IReadOnlyList<UnexplainedShare> Unexplained)
{
    public bool Ok => Verification.Ok && Unexplained.Count == 0;
}

/// <summary>
/// <c>conclave audit reconcile</c> (issue 14 item 8): every signature share a node recorded
/// (<see cref="SignAuditRecords.NodeAction"/>) must match a signing round the server's log recorded
/// (<see cref="SignAuditRecords.CoordinatorAction"/>) with the same key id, message hash, key version and session.
/// DKLs23 shares (<see cref="SignAuditRecords.DklsNodeAction"/>) match DKLs23 rounds (<see cref="SignAuditRecords.DklsCoordinatorAction"/>)
/// the same way. A share without one was given to someone other than this server (or the server's entry was removed).
/// </summary>
public static class AuditReconciler
{
    private const int Page = 1000;

    /// <summary>The rounds the server's log records, as "key id ‖ message hash ‖ round" strings.</summary>
    public static async Task<HashSet<string>> ServerRoundsAsync(IConclaveStore server, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(server);
        var rounds = new HashSet<string>(StringComparer.Ordinal);
        await foreach (AuditEntry e in ReadAllAsync(server, ct).ConfigureAwait(false))
        {
            if (e.Action is SignAuditRecords.CoordinatorAction or SignAuditRecords.DklsCoordinatorAction && Match(e) is { } m)
            {
                rounds.Add(m);
            }
        }

        return rounds;
    }

    /// <summary>Verifies a node's log and checks each of its shares against the server's rounds.</summary>
    public static async Task<NodeReconciliation> ReconcileNodeAsync(string node, IConclaveStore nodeStore, HashSet<string> serverRounds, AuditVerifyOptions verifyOptions, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(nodeStore);
        ArgumentNullException.ThrowIfNull(serverRounds);
        AuditVerificationResult verification = await nodeStore.Audit.VerifyAsync(verifyOptions, ct).ConfigureAwait(false);
        int shares = 0;
        var unexplained = new List<UnexplainedShare>();
        await foreach (AuditEntry e in ReadAllAsync(nodeStore, ct).ConfigureAwait(false))
        {
            if (e.Action is not (SignAuditRecords.NodeAction or SignAuditRecords.DklsNodeAction))
            {
                continue;
            }

            shares++;
            if (Match(e) is not { } m || !serverRounds.Contains(m))
            {
                unexplained.Add(new UnexplainedShare(e.Seq, e.Time, e.KeyId ?? "", SignAuditRecords.RoundOf(e) ?? e.Result,
                    e.RequestHash is null ? "" : Convert.ToHexStringLower(e.RequestHash)));
            }
        }

        return new NodeReconciliation(node, verification, shares, unexplained);
    }

    private static string? Match(AuditEntry e) =>
        e.KeyId is null || e.RequestHash is null || SignAuditRecords.RoundOf(e) is not { } round
            ? null
            : SignAuditRecords.FamilyOf(e.Action) + "|" + e.KeyId + "|" + Convert.ToHexStringLower(e.RequestHash) + "|" + round;

    private static async IAsyncEnumerable<AuditEntry> ReadAllAsync(IConclaveStore store, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        long from = 1;
        while (true)
        {
            IReadOnlyList<AuditEntry> page = await store.Audit.ReadAsync(from, Page, ct).ConfigureAwait(false);
            foreach (AuditEntry e in page)
            {
                yield return e;
            }

            if (page.Count < Page)
            {
                yield break;
            }

            from = page[^1].Seq + 1;
        }
    }
}
