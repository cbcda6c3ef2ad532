// Verifies single-key signatures made by Conclave with independent libraries:
// @noble/curves (secp256k1 ECDSA, BIP-340 Schnorr, Ed25519) and ethers v6 (ecrecover to an address).
// Case: {scheme, publicKey, input, signature, recoveryId?}, hex without 0x. Result: {ok, address?}.
import { secp256k1, schnorr } from '@noble/curves/secp256k1.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/curves/utils.js';
import { recoverAddress, Signature } from 'ethers';

export function run(cases) {
  return cases.map((c) => {
    const pk = hexToBytes(c.publicKey);
    const input = hexToBytes(c.input);
    const sig = hexToBytes(c.signature);
    switch (c.scheme) {
      case 'ecdsa-secp256k1': {
        const ok = secp256k1.verify(sig, input, pk, { prehash: false, lowS: true, format: 'compact' });
        const ethSig = Signature.from({
          r: '0x' + c.signature.slice(0, 64),
          s: '0x' + c.signature.slice(64, 128),
          v: 27 + c.recoveryId,
        });
        const address = recoverAddress('0x' + c.input, ethSig);
        return { ok, address: address.toLowerCase() };
      }
      case 'schnorr-bip340':
        return { ok: schnorr.verify(sig, input, pk) };
      case 'ed25519':
        return { ok: ed25519.verify(sig, input, pk, { zip215: false }) };
      default:
        throw new Error(`unknown scheme ${c.scheme}`);
    }
  });
}
