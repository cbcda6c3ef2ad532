using Conclave.Policy.Principals;
using Conclave.Policy.Risk;
using Conclave.Server.Api;
using Conclave.Server.Api.Identity;
using Conclave.Storage.Risk;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Conclave.Server.Risk;

/// <summary>
/// The risk routes (docs/API.md "Risk level"): <c>GET /v1/risk</c> (every role), <c>PUT /v1/risk</c> (roles admin or
/// operator), <c>POST /v1/risk/prices</c> (admin, operator or agent: a price feed), <c>POST /v1/risk/lockdown/exit</c>
/// (role approver, and the handler requires one of the approvers listed in server.json). The roles are the routes'
/// <see cref="AllowedRoles"/>, checked by the authentication middleware before the handler. Each call is audited by the
/// middleware like every /v1 call; level changes and votes get entries of their own (RiskService).
/// </summary>
public static class RiskRoutes
{
    private const int MaxReasonLength = 500;
    private const int MaxSourceLength = 64;

    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        RouteGroupBuilder v1 = app.MapGroup("/v1").WithTags("v1");

        v1.MapGet("/risk", async Task<Ok<RiskResponse>> (RiskService risk, CancellationToken ct) =>
            TypedResults.Ok(ToResponse(risk, await risk.RefreshAsync(ct).ConfigureAwait(false))))
            .WithName("GetRisk").WithMetadata(new AllowedRoles(Role.Admin, Role.Operator, Role.Approver, Role.Auditor, Role.Agent))
            .ProducesProblem(401, "application/problem+json").ProducesProblem(403, "application/problem+json");

        v1.MapPut("/risk", async Task<Ok<RiskResponse>> (HttpContext ctx, SetRiskRequest body, RiskService risk, CancellationToken ct) =>
        {
            CallerIdentity caller = CallerIdentity.Get(ctx);
            if (body.Level is null || !RiskLevels.TryParse(body.Level, out RiskLevel level))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, "level is required and must be one of normal, elevated, stressed, lockdown");
            }

            if (body.Reason is { } reason && (reason.Length > MaxReasonLength || reason.Any(char.IsControl)))
            {
                throw new ApiException(ProblemTypes.InvalidRequest, $"reason must be at most {MaxReasonLength} characters without control characters");
            }

            return TypedResults.Ok(ToResponse(risk, await risk.SetManualAsync(level, caller.Actor, body.Reason, ct).ConfigureAwait(false)));
        }).WithName("SetRisk").WithMetadata(new AllowedRoles(Role.Admin, Role.Operator)).ProducesProblem(400, "application/problem+json").ProducesProblem(401, "application/problem+json").ProducesProblem(403, "application/problem+json");

        v1.MapPost("/risk/prices", async Task<Ok<RiskResponse>> (RiskPricesRequest body, RiskService risk, CancellationToken ct) =>
        {
            if (body.Samples is null || body.Samples.Count is 0 or > RiskService.MaxSamplesPerRequest)
            {
                throw new ApiException(ProblemTypes.InvalidRequest, $"samples must hold 1 to {RiskService.MaxSamplesPerRequest} price samples");
            }

            DateTimeOffset now = risk.Now;
            var samples = new List<StoredPriceSample>(body.Samples.Count);
            for (int i = 0; i < body.Samples.Count; i++)
            {
                RiskPriceSample s = body.Samples[i] ?? throw new ApiException(ProblemTypes.InvalidRequest, $"samples[{i}] must be a price sample object");
                if (s.Source is not { Length: > 0 and <= MaxSourceLength } source || !source.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/' or ':'))
                {
                    throw new ApiException(ProblemTypes.InvalidRequest, $"samples[{i}].source must be 1 to {MaxSourceLength} characters from A-Z a-z 0-9 - _ . / :");
                }

                if (s.Price is not { } price || price <= 0)
                {
                    throw new ApiException(ProblemTypes.InvalidRequest, $"samples[{i}].price is required and must be positive");
                }

                DateTimeOffset at = s.At ?? now;
                if (at > now + TimeSpan.FromSeconds(5))
                {
                    throw new ApiException(ProblemTypes.InvalidRequest, $"samples[{i}].at is in the future");
                }

                samples.Add(new StoredPriceSample(source, at, price));
            }

            return TypedResults.Ok(ToResponse(risk, await risk.AddPricesAsync(samples, ct).ConfigureAwait(false)));
        }).WithName("PostRiskPrices").WithMetadata(new AllowedRoles(Role.Admin, Role.Operator, Role.Agent)).ProducesProblem(400, "application/problem+json").ProducesProblem(401, "application/problem+json").ProducesProblem(403, "application/problem+json");

        v1.MapPost("/risk/lockdown/exit", async Task<Ok<LockdownVoteResponse>> (HttpContext ctx, RiskService risk, CancellationToken ct) =>
        {
            CallerIdentity caller = CallerIdentity.Get(ctx);
            if (risk.Current.Level != RiskLevel.Lockdown && (await risk.RefreshAsync(ct).ConfigureAwait(false)).State.Level != RiskLevel.Lockdown)
            {
                throw new ApiException(ProblemTypes.NotInLockdown, $"the risk level is {RiskLevels.Name(risk.Current.Level)}, not lockdown: there is nothing to vote on");
            }

            if (!risk.Config.LockdownExit.Members.Contains(caller.Actor, StringComparer.Ordinal))
            {
                throw new ApiException(ProblemTypes.Forbidden,
                    $"principal '{caller.Actor}' may not vote to leave lockdown: only the approvers listed in server.json risk.lockdownExit.approvers may");
            }

            LockdownVote vote = await risk.VoteLockdownExitAsync(caller.Actor, ct).ConfigureAwait(false);
            return vote.Outcome switch
            {
                "not-in-lockdown" => throw new ApiException(ProblemTypes.NotInLockdown, $"the risk level is {RiskLevels.Name(vote.Snapshot.State.Level)}, not lockdown: there is nothing to vote on"),
                "already-voted" => throw new ApiException(ProblemTypes.AlreadyVoted, $"principal '{caller.Actor}' already voted to leave this lockdown"),
                _ => TypedResults.Ok(new LockdownVoteResponse(vote.Outcome, ToResponse(risk, vote.Snapshot))),
            };
        }).WithName("VoteLockdownExit").WithMetadata(new AllowedRoles(Role.Approver)).ProducesProblem(401, "application/problem+json").ProducesProblem(403, "application/problem+json").ProducesProblem(409, "application/problem+json");
    }

    public static RiskResponse ToResponse(RiskService risk, RiskSnapshot s)
    {
        ArgumentNullException.ThrowIfNull(risk);
        ArgumentNullException.ThrowIfNull(s);
        RiskInputs i = s.Inputs;
        return new RiskResponse(RiskLevels.Name(s.State.Level), s.State.Since, s.State.Reasons, s.State.LastDemandedAt, s.CanFallAfter, (long)risk.Config.CoolDown.TotalSeconds,
            new RiskInputsResponse(new RiskManualResponse(RiskLevels.Name(i.Manual), i.ManualBy, i.ManualReason, i.ManualAt),
                [.. i.Prices.Select(p => new PriceSourceResponse(p.Source, p.Volatility, p.Samples, p.LatestAt, p.Stale))], i.ThreatEvents, i.CulpritNodes,
                RiskLevels.Name(i.Demanded), i.DemandedReasons),
            new LockdownExitResponse(s.LockdownExitVotes, risk.Config.LockdownExit.K, risk.Config.LockdownExit.Members));
    }
}
