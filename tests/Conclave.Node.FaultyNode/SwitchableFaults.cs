using Conclave.Node.Threshold.Dkls23;
using Conclave.Node.Threshold.Sharing;
using Conclave.Threshold.Frost;

namespace Conclave.Node.FaultyNode;

/// <summary>
/// Faults chosen while the node runs (--fault-file FILE): every hook reads the file — "--dkg-fault NAME GENERATION" or
/// "--dkls-fault NAME GENERATION", or nothing (empty or missing file) for no fault — and acts as the catalogue's fault of
/// that name (<see cref="DkgFaultCatalogue"/>, <see cref="DklsFaultCatalogue"/>) or as an honest node does. A fresh fault
/// per line written (a new generation), so a fault's own state (a presignature it kept, the commitment of its previous
/// session) starts anew each time a test chooses it. One faulty host then serves a whole test class with no restart per
/// fault; the test writes the file between runs (Conclave.Testing.NodeFaultFile). An unknown line fails the hook (the node's step fails; the test sees it).
/// </summary>
internal sealed class SwitchableFaults(string path)
{
    private readonly object _gate = new();
    private string _chosen = "";
    private DkgFaults? _dkg;
    private DklsFaults? _dkls;

    /// <summary>
    /// DKG hooks: the chosen fault's, else what the node does without hooks (<see cref="Dkg.Commit"/>, one commitment and
    /// one round-one package to every peer — recipients [] — and <see cref="Dkg.Round2"/>). No fault of the catalogue
    /// complains falsely, so the finish step has no hook here.
    /// </summary>
    public DkgFaults Dkg() => new()
    {
        Commit = (session, self, current) => Current().Dkg?.Commit is { } commit ? commit(session, self, current) : Conclave.Threshold.Frost.Dkg.Commit(session, self, current),
        Commitments = (real, others) => Current().Dkg?.Commitments is { } equivocate ? equivocate(real, others) : [([], real)],
        Round1 = (real, others) => Current().Dkg?.Round1 is { } equivocate ? equivocate(real, others) : [([], real)],
        Round2 = (round1, received) => Current().Dkg?.Round2 is { } deal ? deal(round1, received) : Conclave.Threshold.Frost.Dkg.Round2(round1, received),
    };

    /// <summary>DKLs23 hooks: the chosen fault's edits, else what they are given, unchanged.</summary>
    public DklsFaults Dkls() => new()
    {
        Round1 = (s, m) => Current().Dkls?.Round1 is { } edit ? edit(s, m) : m,
        Broadcast = (s, c) => Current().Dkls?.Broadcast is { } edit ? edit(s, c) : c,
        Wire = w => Current().Dkls?.Wire is { } edit ? edit(w) : w,
        Round2 = m => Current().Dkls?.Round2 is { } edit ? edit(m) : m,
        SetupRound1 = m => Current().Dkls?.SetupRound1 is { } edit ? edit(m) : m,
        SetupRound2 = m => Current().Dkls?.SetupRound2 is { } edit ? edit(m) : m,
        OnlinePresignature = p => Current().Dkls?.OnlinePresignature is { } swap ? swap(p) : p,
        Share = s => Current().Dkls?.Share is { } edit ? edit(s) : s,
        SignedEnvelope = e => Current().Dkls?.SignedEnvelope is { } edit ? edit(e) : e,
    };

    private (DkgFaults? Dkg, DklsFaults? Dkls) Current()
    {
        string line;
        try
        {
            line = File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            line = "";
        }

        lock (_gate)
        {
            if (!string.Equals(line, _chosen, StringComparison.Ordinal))
            {
                string[] words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                (_dkg, _dkls) = words switch
                {
                    [] => ((DkgFaults?)null, (DklsFaults?)null),
                    ["--dkg-fault", string name, ..] => (DkgFaultCatalogue.For(name) ?? throw Unknown(line), null),
                    ["--dkls-fault", string name, ..] => (null, DklsFaultCatalogue.For(name) ?? throw Unknown(line)),
                    _ => throw Unknown(line),
                };
                _chosen = line;
            }

            return (_dkg, _dkls);
        }
    }

    private InvalidOperationException Unknown(string line) => new($"no such fault \"{line}\" in {path}");
}
