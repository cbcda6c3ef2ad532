using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Conclave.Client;
using Conclave.Policy.HttpSignatures;
using Spectre.Console;

namespace Conclave.Cli.Commands;

/// <summary>
/// <c>conclave agents add|list|renew|revoke</c>: agents (programs that sign their requests, docs/POLICY.md "Agent
/// authentication") and their credentials. <c>add</c> makes the key pair here, registers its public key, and writes
/// the private key to a credential file readable only by its owner; the private key never goes to the server.
/// </summary>
internal static class AgentsCommand
{
    public static Command Create()
    {
        var agents = new Command("agents", "Add, list, renew and revoke agents (programs that sign their requests) and their credentials.");
        agents.Subcommands.Add(AddCmd());
        agents.Subcommands.Add(ListCmd());
        agents.Subcommands.Add(RenewCmd());
        agents.Subcommands.Add(RevokeCmd());
        return agents;
    }

    private static Command AddCmd()
    {
        var api = new ApiConnection();
        var id = new Argument<string>("id") { Description = "The agent's id (1-128 characters from [A-Za-z0-9._:@-])." };
        var keys = new Option<string[]>("--key") { Description = "A key id the agent may use (repeat; * for any).", AllowMultipleArgumentsPerToken = false };
        var labels = new Option<string[]>("--label") { Description = "A key label the agent may use (repeat)." };
        var ops = new Option<string[]>("--operation") { Description = "An operation the agent may ask for (repeat; * for any): liquidate, settle, exercise, margin-call, release-collateral, hedge, transfer, typed-data, message, raw-digest." };
        var algorithm = new Option<string>("--algorithm") { Description = "ed25519 (default) or ecdsa-p256-sha256.", DefaultValueFactory = _ => "ed25519" };
        var lease = new Option<long?>("--lease-seconds") { Description = "How long the credential lives unless renewed (60 s to 90 days; default 7 days)." };
        var keyOut = new Option<string>("--key-out") { Description = "Where to write the credential file (private key; created readable by its owner only; never overwritten).", Required = true };
        var cmd = new Command("add", "Create an agent and a credential for it: the key pair is made here and only the public key is sent.");
        cmd.Arguments.Add(id);
        cmd.Options.Add(keys);
        cmd.Options.Add(labels);
        cmd.Options.Add(ops);
        cmd.Options.Add(algorithm);
        cmd.Options.Add(lease);
        cmd.Options.Add(keyOut);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            string agentId = parse.GetValue(id)!;
            string file = parse.GetValue(keyOut)!;
            string alg = parse.GetValue(algorithm)!;
            if (alg is not ("ed25519" or "ecdsa-p256-sha256"))
            {
                throw new CliUsageException("--algorithm must be ed25519 or ecdsa-p256-sha256");
            }

            if (File.Exists(file) || Directory.Exists(file))
            {
                throw new CliUsageException($"--key-out {file}: the file exists; a credential file is never overwritten");
            }

            string? dir = Path.GetDirectoryName(Path.GetFullPath(file));
            if (dir is null || !Directory.Exists(dir))
            {
                throw new CliUsageException($"--key-out {file}: its folder does not exist");
            }

            (byte[] privateKey, byte[] publicKey) = CredentialFile.NewKeyPair(alg);
            try
            {
                using ConclaveClient client = api.Connect(parse);
                PrincipalInfo p = await client.CreatePrincipalAsync(new CreatePrincipalRequest(agentId, "agent", null,
                    new ScopeInfo(parse.GetValue(keys) ?? [], parse.GetValue(labels) ?? [], parse.GetValue(ops) ?? [])), ct).ConfigureAwait(false);
                CredentialInfo c = await client.AddCredentialAsync(p.Id, new AddCredentialRequest(alg, Convert.ToBase64String(publicKey), null, parse.GetValue(lease)), ct).ConfigureAwait(false);
                PrincipalCredential.Write(file, p.Id, c.KeyId, alg, privateKey, publicKey);
                if (parse.GetValue(api.Json))
                {
                    ApiConnection.PrintJson(c);
                    return 0;
                }

                var f = new Fields();
                f.Add("agent", p.Id);
                f.Add("key id", c.KeyId);
                f.Add("algorithm", c.Algorithm);
                f.Add("lease until", c.LeaseExpiresAt.ToString("u", CultureInfo.InvariantCulture));
                f.Add("credential file", file);
                f.Write();
                return 0;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(privateKey);
            }
        });
        return cmd;
    }

    private static Command ListCmd()
    {
        var api = new ApiConnection();
        var cmd = new Command("list", "List the agents, their scope and their credentials.");
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            var agents = (await client.ListPrincipalsAsync(ct).ConfigureAwait(false)).Where(p => p.Kind == "agent").ToList();
            if (parse.GetValue(api.Json))
            {
                ApiConnection.PrintJson(agents);
                return 0;
            }

            Table t = ApiConnection.NewTable("agent", "state", "keys", "operations", "credentials");
            foreach (PrincipalInfo a in agents)
            {
                t.AddRow(Markup.Escape(a.Id), a.Disabled ? "disabled" : "enabled", Markup.Escape(string.Join(", ", a.Scope.Keys ?? [])), Markup.Escape(string.Join(", ", a.Scope.Operations ?? [])),
                    Markup.Escape(string.Join("; ", a.Credentials.Select(c => $"{c.KeyId} {c.State} until {c.LeaseExpiresAt.ToString("u", CultureInfo.InvariantCulture)}"))));
            }

            AnsiConsole.Write(t);
            return 0;
        });
        return cmd;
    }

    private static Command RenewCmd()
    {
        var api = new ApiConnection();
        var id = new Argument<string>("id") { Description = "The agent's id." };
        var keyId = new Argument<string>("key-id") { Description = "The credential's key id." };
        var lease = new Option<long?>("--lease-seconds") { Description = "The new lease from now (60 s to 90 days; default 7 days)." };
        var cmd = new Command("renew", "Renew a credential's lease from now.");
        cmd.Arguments.Add(id);
        cmd.Arguments.Add(keyId);
        cmd.Options.Add(lease);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            CredentialInfo c = await client.RenewCredentialAsync(parse.GetValue(id)!, parse.GetValue(keyId)!, parse.GetValue(lease), ct).ConfigureAwait(false);
            return Print(parse, api, c);
        });
        return cmd;
    }

    private static Command RevokeCmd()
    {
        var api = new ApiConnection();
        var id = new Argument<string>("id") { Description = "The agent's id." };
        var keyId = new Argument<string>("key-id") { Description = "The credential's key id." };
        var cmd = new Command("revoke", "Revoke a credential for good (requests signed with it are refused from now on).");
        cmd.Arguments.Add(id);
        cmd.Arguments.Add(keyId);
        api.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            using ConclaveClient client = api.Connect(parse);
            CredentialInfo c = await client.RevokeCredentialAsync(parse.GetValue(id)!, parse.GetValue(keyId)!, ct).ConfigureAwait(false);
            return Print(parse, api, c);
        });
        return cmd;
    }

    private static int Print(ParseResult parse, ApiConnection api, CredentialInfo c)
    {
        if (parse.GetValue(api.Json))
        {
            ApiConnection.PrintJson(c);
        }
        else
        {
            Console.WriteLine($"{c.PrincipalId} {c.KeyId}: {c.State}, lease until {c.LeaseExpiresAt.ToString("u", CultureInfo.InvariantCulture)}");
        }

        return 0;
    }

    /// <summary>A new key pair: the Ed25519 seed (RFC 8032) or the P-256 PKCS#8 private key, and the raw public key.</summary>
}
