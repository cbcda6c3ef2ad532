using Conclave.Client;
using Conclave.Crypto.Signing;
using Conclave.Server.Api;
using Conclave.Server.Policy;
using Microsoft.Extensions.DependencyInjection;

using static Conclave.Server.Tests.PolicyApprovalTests;
using static Conclave.Server.Tests.PolicyEnforcementTests;

namespace Conclave.Server.Tests;

/// <summary>
/// Conclave.Client and requests held for approval: <see cref="ConclaveClient.SignAsync"/> answers a 202 with
/// <see cref="ConclaveRequestHeldException"/> naming the request (not a result without a signature),
/// <see cref="ConclaveClient.GetRequestAsync"/> shows it, and <see cref="ConclaveClient.WaitForSignatureAsync"/> returns
/// the signature once the approvers' quorum is met, or throws when a request is rejected.
/// </summary>
public sealed class ClientHeldRequestTests
{
    [Fact]
    public async Task The_client_reports_a_held_request_and_waits_for_its_signature_or_its_rejection()
    {
        await using PolicyServer s = await PolicyServer.StartAsync();
        (string ed, _) = await CreateKeyAsync(s.Http, "ed25519");
        await PutPolicyAsync(s, HeldPolicy);
        using var client = new ConclaveClient(s.Http, s.Http.DefaultRequestHeaders.Authorization!.Parameter!);
        ApprovalService approvals = s.App.Services.GetRequiredService<ApprovalService>();
        byte[] evidence = "{}"u8.ToArray();

        ConclaveRequestHeldException held = await Assert.ThrowsAsync<ConclaveRequestHeldException>(() => client.SignAsync(ed, new Conclave.Client.SignRequest(Message: "68656c6c6f")));
        string id = held.Held!.RequestId;
        Assert.Equal("pending", held.Held.Status);
        RequestStatus pending = await client.GetRequestAsync(id);
        Assert.Equal(("pending", held.Held.RequestHash), (pending.Status, pending.RequestHash));
        Assert.Null(pending.Result);

        // The client waits while the approvers vote; the second approval signs, and the wait returns that signature.
        Task<SignResult> waiting = client.WaitForSignatureAsync(id, TimeSpan.FromMilliseconds(50));
        await approvals.VoteAsync(Approver("alice"), id, true, pending.RequestHash, pending.PolicyHash!, evidence, CancellationToken.None);
        Assert.False(waiting.IsCompleted);
        await approvals.VoteAsync(Approver("bob"), id, true, pending.RequestHash, pending.PolicyHash!, evidence, CancellationToken.None);
        SignResult signed = await waiting.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.True(SignatureSchemes.Ed25519.Verify(Convert.FromHexString(signed.PublicKey), Convert.FromHexString("68656c6c6f"), Convert.FromHexString(signed.Signature)));

        // A rejected request: the wait ends with an error naming it, and nothing is signed.
        ConclaveRequestHeldException second = await Assert.ThrowsAsync<ConclaveRequestHeldException>(() => client.SignAsync(ed, new Conclave.Client.SignRequest(Message: "6279")));
        RequestStatus other = await client.GetRequestAsync(second.Held!.RequestId);
        await approvals.VoteAsync(Approver("carol"), other.RequestId, false, other.RequestHash, other.PolicyHash!, evidence, CancellationToken.None);
        ConclaveApiException rejected = await Assert.ThrowsAsync<ConclaveApiException>(() => client.WaitForSignatureAsync(other.RequestId, TimeSpan.FromMilliseconds(50)));
        Assert.Contains("rejected", rejected.Message, StringComparison.Ordinal);

        // The CLI: a held signature is one line naming the request, and exit code 4 (nothing signed).
        var cli = PolicyCliTests.Cli(s, "keys", "sign", ed, "--message", "6869");
        Assert.True(cli.Exit == 4, cli.Out + cli.Err);
        Assert.StartsWith("conclave: error: held for approval: request req-", Assert.Single(cli.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);

        // An unknown request is the server's 404 problem.
        Assert.Equal(404, (await Assert.ThrowsAsync<ConclaveApiException>(() => client.GetRequestAsync("req-none"))).Status);
    }
}
