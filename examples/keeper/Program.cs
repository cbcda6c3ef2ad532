using System.Runtime.InteropServices;
using Conclave.Client;
using Conclave.Keeper;
using Conclave.Policy.HttpSignatures;

// The example venue's keeper and settlement agents (examples/keeper/README.md).
KeeperOptions options;
HttpSigningKey signingKey;
string keyId;
string principal;
try
{
    options = KeeperOptions.Parse(args);
    (signingKey, keyId, principal) = AgentCredential.Load(options.CredentialFile);
}
catch (KeeperUsageException e)
{
    Console.Error.WriteLine("conclave-keeper: " + e.Message);
    Console.Error.WriteLine(KeeperOptions.Usage);
    return 2;
}

using HttpSigningKey key = signingKey;
using var stop = new CancellationTokenSource();
using var work = new CancellationTokenSource();
// SIGTERM and SIGINT stop watching; what is in flight is given time to finish.
using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

var log = new KeeperLog(Console.Out, TimeProvider.System);
using ConclaveClient conclave = ConclaveClient.ForAgent(options.Server, key, keyId, TimeSpan.FromSeconds(120));
using var chain = new ChainReader(options.ChainUrl, conclave);
var venue = new VenueOperations(conclave, options.Key, options.Venue);
using var dispatcher = new OperationDispatcher(venue, chain, log, options.Concurrency);
string mode = options.Mode == KeeperMode.Liquidate ? "liquidate" : "settle";
log.Line($"started mode={mode} agent={principal} key={options.Key} venue={options.Venue} engine={options.Engine} concurrency={options.Concurrency} reads={chain.Source}");

if (options.Mode == KeeperMode.Liquidate)
{
    await new Liquidator(options, chain, dispatcher, log).RunAsync(stop.Token, work.Token);
}
else
{
    await new Settler(options, chain, dispatcher, log).RunAsync(stop.Token, work.Token);
}

log.Line("stopping: waiting for the operations in flight");
if (!await dispatcher.DrainAsync(TimeSpan.FromSeconds(30)))
{
    await work.CancelAsync();
    await dispatcher.DrainAsync(TimeSpan.FromSeconds(5));
}

log.Line($"stopped mode={mode} sent={dispatcher.Sent} reverted={dispatcher.Reverted} failed={dispatcher.Failed}");
return 0;
