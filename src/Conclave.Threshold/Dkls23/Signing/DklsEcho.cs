using System.Security.Cryptography;
using Conclave.Threshold.Dkls23.Internal;
using Conclave.Threshold.Frost;

namespace Conclave.Threshold.Dkls23;

/// <summary>
/// The echo of round-one data between signers. DKLs23 Protocol 3.6 (ePrint 2023/765) commits to R_i in round one and
/// opens it in round two over point-to-point channels: a party that opens different R_i to different peers makes the
/// honest signers compute different R, which the paper's security with abort tolerates but which names nobody. Here every
/// signer sends one round-one broadcast commitment C_i = H(sid, i, R_i, pk_i, salt_i) to all its peers
/// (<see cref="DklsSignRound1State.Broadcast"/>), each opening is checked against it (round three), and the copies are
/// compared two ways: each signer echoes the digest of every C_j it received (<see cref="Digest"/>, checked by
/// <see cref="CheckEchoes"/> before round three uses any opening), and whoever holds the copies themselves, signed by
/// their author (the coordinator, which relays them), finds the author of two different values with
/// <see cref="Equivocators"/>. Pure: public values in, a verdict out.
/// </summary>
public static class DklsEcho
{
    /// <summary>The echo digest: H(sid, (j, C_j) for every signer j in identifier order), this party's own C_i included.</summary>
    public static byte[] Digest(ReadOnlySpan<byte> sessionId, IReadOnlyDictionary<Identifier, byte[]> broadcasts)
    {
        ArgumentNullException.ThrowIfNull(broadcasts);
        using var h = new DklsHash("sign/echo");
        h.Add(sessionId).Add(broadcasts.Count);
        foreach (KeyValuePair<Identifier, byte[]> kv in broadcasts.OrderBy(kv => kv.Key))
        {
            h.Add(kv.Key).Add(kv.Value);
        }

        return h.Finish();
    }

    /// <summary>
    /// Every peer's echo must equal this party's own (<paramref name="own"/>, <see cref="DklsSignRound2State.Echo"/>),
    /// compared in constant time; otherwise the signers do not hold the same round-one data and the session aborts
    /// (<see cref="DklsFailure.Equivocation"/>) before any opening is used. Nobody is named here: a digest cannot tell
    /// whether the author sent two values or the echoer lied; the author's signed copies can (<see cref="Equivocators"/>).
    /// </summary>
    public static void CheckEchoes(ReadOnlySpan<byte> own, IReadOnlyDictionary<Identifier, byte[]> echoes)
    {
        ArgumentNullException.ThrowIfNull(echoes);
        foreach ((Identifier peer, byte[] echo) in echoes.OrderBy(kv => kv.Key))
        {
            if (echo.Length != own.Length || !CryptographicOperations.FixedTimeEquals(echo, own))
            {
                throw DklsErrors.Refused(DklsFailure.Equivocation,
                    $"participant {peer} received other round-one broadcast commitments than this participant: some signer sent different values to different peers");
            }
        }
    }

    /// <summary>
    /// The authors of two different round-one broadcast commitments in one session, in identifier order. Each entry is one
    /// copy as its author sent it to one recipient; the caller must have checked that the author signed every copy
    /// (an unsigned copy proves nothing, and the recipient could have made it up), so a disagreement here is proof
    /// against the author alone: an honest signer sends one value to all its peers.
    /// </summary>
    public static IReadOnlyList<Identifier> Equivocators(IEnumerable<(Identifier From, byte[] Broadcast)> copies)
    {
        ArgumentNullException.ThrowIfNull(copies);
        var first = new Dictionary<Identifier, byte[]>();
        var found = new SortedSet<Identifier>();
        foreach ((Identifier from, byte[] value) in copies)
        {
            if (!first.TryAdd(from, value) && !first[from].AsSpan().SequenceEqual(value))
            {
                found.Add(from);
            }
        }

        return [.. found];
    }
}
