using System.Globalization;
using System.Text;
using Conclave.Crypto.Hashing;

namespace Conclave.Chains.Ethereum;

/// <summary>
/// EIP-191 version 0x45 ("personal_sign", also <c>eth_sign</c> in current clients):
/// Keccak-256("\x19Ethereum Signed Message:\n" ‖ decimal length ‖ message).
/// </summary>
public static class PersonalMessage
{
    public static byte[] Hash(ReadOnlySpan<byte> message)
    {
        byte[] prefix = Encoding.ASCII.GetBytes("\u0019Ethereum Signed Message:\n" + message.Length.ToString(CultureInfo.InvariantCulture));
        return Keccak256.HashData([.. prefix, .. message]);
    }
}
