// Verifies DKLs23 threshold ECDSA signatures made by Conclave with @noble/curves alone:
// secp256k1 ECDSA verification (low-S required, digest as given) and public-key recovery from the recovery id.
// Case: {publicKey, digest, signature (64-byte r||s), recoveryId}, hex without 0x. Result: {ok, recovered}.
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hexToBytes, bytesToHex } from '@noble/curves/utils.js';

export function run(cases) {
  return cases.map((c) => {
    const pk = hexToBytes(c.publicKey);
    const digest = hexToBytes(c.digest);
    const sig = hexToBytes(c.signature);
    const ok = secp256k1.verify(sig, digest, pk, { prehash: false, lowS: true, format: 'compact' });
    const withRecovery = new Uint8Array(65);
    withRecovery[0] = c.recoveryId;
    withRecovery.set(sig, 1);
    const recoveredKey = secp256k1.recoverPublicKey(withRecovery, digest, { prehash: false });
    return { ok, recovered: bytesToHex(recoveredKey) === c.publicKey };
  });
}
