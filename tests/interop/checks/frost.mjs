// Verifies Conclave FROST signatures with independent code (@noble/curves 2):
//  frost-ed25519   -> ed25519.verify (RFC 8032, strict: zip215 false)
//  frost-taproot   -> schnorr.verify (BIP-340) under the x-only (tweaked) key
//  frost-secp256k1 -> RFC 9591 section 6.5 verification written here on noble's secp256k1 Point:
//                     c = hash_to_field(R || PK || m, DST = contextString || "chal", L = 48), z*G == R + c*PK
// Case: {scheme, publicKey, message, signature} hex. Result: {ok}.
import { secp256k1, schnorr } from '@noble/curves/secp256k1.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hash_to_field } from '@noble/curves/abstract/hash-to-curve.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hexToBytes, bytesToNumberBE, concatBytes } from '@noble/curves/utils.js';

const N = secp256k1.Point.Fn.ORDER;

function verifyFrostSecp256k1(pk, msg, sig) {
  if (sig.length !== 65) return false;
  const R = secp256k1.Point.fromBytes(sig.slice(0, 33));
  const z = bytesToNumberBE(sig.slice(33));
  if (z >= N) return false;
  const P = secp256k1.Point.fromBytes(pk);
  const [[c]] = hash_to_field(concatBytes(sig.slice(0, 33), pk, msg), 1, {
    DST: 'FROST-secp256k1-SHA256-v1chal', p: N, m: 1, k: 128, expand: 'xmd', hash: sha256,
  });
  const lhs = z === 0n ? secp256k1.Point.ZERO : secp256k1.Point.BASE.multiply(z);
  const rhs = c === 0n ? R : R.add(P.multiply(c));
  return lhs.equals(rhs);
}

export function run(cases) {
  return cases.map((c) => {
    const pk = hexToBytes(c.publicKey);
    const msg = hexToBytes(c.message);
    const sig = hexToBytes(c.signature);
    try {
      switch (c.scheme) {
        case 'frost-ed25519':
          return { ok: ed25519.verify(sig, msg, pk, { zip215: false }) };
        case 'frost-taproot':
          return { ok: schnorr.verify(sig, msg, pk) };
        case 'frost-secp256k1':
          return { ok: verifyFrostSecp256k1(pk, msg, sig) };
        default:
          throw new Error(`unknown scheme ${c.scheme}`);
      }
    } catch (e) {
      return { ok: false, error: String(e) };
    }
  });
}
