using System.Globalization;
using Conclave.Node.Config;
using Conclave.Node.FaultyNode;
using Conclave.Node.Hosting;
using Conclave.Node.Threshold.Dkls23;
using Conclave.Node.Threshold.Sharing;
using Conclave.Threshold.Frost;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// A signer node with DKG faults, for the complaint tests (tests/Conclave.Node.Tests/DkgComplaintTests.cs) and the DKG
// attacks on ecdsa-dkls23 key generation (DkgFaultCatalogue; DklsClusterAttackTests), or with a DKLs23
// signing fault (DklsFaultCatalogue), for the attack tests through the transport (tests/Conclave.Node.Tests/DklsClusterAttackTests.cs).
// Usage: Conclave.Node.FaultyNode --config FILE [--parent-pid PID] [--dkg-bad-share-to NODE] [--dkg-false-complaint] [--dkg-fault NAME] [--dkls-fault NAME] [--fault-file FILE]
string? configPath = null;
int? parentPid = null;
uint? badShareTo = null;
bool falseComplaint = false;
DklsFaults? dklsFaults = null;
DkgFaults? dkgFault = null;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--config" when i + 1 < args.Length:
            configPath = args[++i];
            break;
        case "--parent-pid" when i + 1 < args.Length:
            parentPid = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--dkg-bad-share-to" when i + 1 < args.Length:
            badShareTo = uint.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--dkg-false-complaint":
            falseComplaint = true;
            break;
        case "--dkg-fault" when i + 1 < args.Length:
            dkgFault = DkgFaultCatalogue.For(args[++i]);
            if (dkgFault is null)
            {
                Console.Error.WriteLine($"unknown DKG fault {args[i]}; one of {string.Join(", ", DkgFaultCatalogue.Names)}");
                return 2;
            }

            break;
        case "--fault-file" when i + 1 < args.Length:
            var switchable = new SwitchableFaults(args[++i]);
            (dkgFault, dklsFaults) = (switchable.Dkg(), switchable.Dkls());
            break;
        case "--dkls-fault" when i + 1 < args.Length:
            dklsFaults = DklsFaultCatalogue.For(args[++i]);
            if (dklsFaults is null)
            {
                Console.Error.WriteLine($"unknown DKLs23 fault {args[i]}; one of {string.Join(", ", DklsFaultCatalogue.Names)}");
                return 2;
            }

            break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}; usage: --config FILE [--parent-pid PID] [--dkg-bad-share-to NODE] [--dkg-false-complaint] [--dkg-fault NAME] [--dkls-fault NAME] [--fault-file FILE]");
            return 2;
    }
}

if (configPath is null)
{
    Console.Error.WriteLine("--config FILE is required");
    return 2;
}

DkgFaults faults = dkgFault ?? new DkgFaults
{
    // Deals node `badShareTo` a share one more than its polynomial gives, signed with this dealer's committed per-run key
    // (so the receiver's complaint carries proof against this dealer).
    Round2 = badShareTo is uint to
        ? (round1, received) => Dkg.Round2Core(round1, received, null,
            (recipient, share) => recipient.Equals(Identifier.FromInt(round1.Session.Suite, (int)to)) ? share + round1.Session.Suite.ScalarOne : share)
        : null,
    // Complains about the share of the lowest other dealer, which is good: the evidence is the dealer's real signed message.
    Complain = falseComplaint ? received => [DkgComplaint.About(received.OrderBy(p => p.Sender).First()).ToBytes()] : null,
};

NodeConfig config = NodeConfig.Load(configPath);
WebApplication app = await NodeHost.BuildAsync(config, LogLevel.Warning, faults, dklsFaults, CancellationToken.None).ConfigureAwait(false);
if (parentPid is int pid)
{
    _ = Task.Run(async () =>
    {
        // Exit with the test process that started this one.
        while (true)
        {
            try
            {
                using var p = System.Diagnostics.Process.GetProcessById(pid);
                if (p.HasExited)
                {
                    break;
                }
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                break;
            }

            await Task.Delay(500).ConfigureAwait(false);
        }

        app.Lifetime.StopApplication();
    });
}

await app.StartAsync().ConfigureAwait(false);
Console.WriteLine($"faulty node {config.NodeId} listening on {config.Listen}");
await app.WaitForShutdownAsync().ConfigureAwait(false);
return 0;
