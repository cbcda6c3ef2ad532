using Conclave.Cli;

return await CliApp.RunAsync(args).ConfigureAwait(false);
