namespace Conclave.Storage.Requests;

/// <summary>Where a policy request stands.</summary>
public enum RequestState
{
    Pending,
    Approved,
    Rejected,
    Executed,
    Failed,
    Expired,
}

/// <summary>An approver's answer.</summary>
public enum ApprovalDecision
{
    Approve,
    Reject,
}

/// <summary>A request the policy engine holds (for approvals) or tracks. <paramref name="RequestHash"/> is 32 bytes.</summary>
public sealed record NewRequest(string Id, string? KeyId, string Operation, string Requester, byte[] RequestHash, byte[] Payload, DateTimeOffset? ExpiresAt = null);

public sealed record RequestRecord(
    string Id,
    string? KeyId,
    string Operation,
    string Requester,
    byte[] RequestHash,
    byte[] Payload,
    RequestState State,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? ExpiresAt,
    byte[]? Result = null);

public sealed record ApprovalRecord(string RequestId, string Approver, ApprovalDecision Decision, byte[]? Signature, DateTimeOffset At);

/// <summary>Requests and approvals for the policy engine.</summary>
public interface IRequestStore
{
    Task<RequestRecord> CreateAsync(NewRequest request, CancellationToken cancellationToken = default);

    Task<RequestRecord?> GetAsync(string id, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<RequestRecord>> ListAsync(RequestState? state = null, int limit = 1000, CancellationToken cancellationToken = default);

    /// <summary>Moves a request from <paramref name="from"/> to <paramref name="to"/> atomically; false if it was not in <paramref name="from"/>.</summary>
    Task<bool> TransitionAsync(string id, RequestState from, RequestState to, CancellationToken cancellationToken = default);

    /// <summary>
    /// Moves a request from <paramref name="from"/> to <paramref name="to"/> and records its outcome (the signature made,
    /// or why it failed) in one step; false if it was not in <paramref name="from"/>.
    /// </summary>
    Task<bool> FinishAsync(string id, RequestState from, RequestState to, byte[] result, CancellationToken cancellationToken = default);

    /// <summary>Records an approver's decision once; false if that approver already answered. The request must be pending.</summary>
    Task<bool> AddApprovalAsync(string requestId, string approver, ApprovalDecision decision, byte[]? signature = null, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<ApprovalRecord>> GetApprovalsAsync(string requestId, CancellationToken cancellationToken = default);
}
