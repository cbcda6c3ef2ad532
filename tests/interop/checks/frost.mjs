// Verifies Conclave FROST signatures with independent code (@noble/curves 2):
//  frost-ed25519   -> ed25519.verify (RFC 8032, strict: zip215 false)
//  frost-taproot   -> schnorr.verify (BIP-340) under the x-only (tweaked) key
//  frost-secp256k1 -> RFC 9591 section 6.5 verification written here on noble's secp256k1 Point:
//                     c = hash_to_field(R || PK || m, DST = contextString || "chal", L = 48), z*G == R + c*PK
// Case: {scheme, publicKey, message, signature} hex. Result: {ok: true} or {ok: false, reason} for a signature that is
// refused. Anything else (a bug, an unknown scheme, a bad public key) throws, so the whole check fails loudly instead of
// turning into ok: false.
import { secp256k1, schnorr } from '@noble/curves/secp256k1.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hash_to_field } from '@noble/curves/abstract/hash-to-curve.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hexToBytes, bytesToNumberBE, concatBytes } from '@noble/curves/utils.js';

const N = secp256k1.Point.Fn.ORDER;

function verifyFrostSecp256k1(pk, msg, sig) {
  if (sig.length !== 65) return 'signature is not 65 bytes';
  let R;
  try {
    R = secp256k1.Point.fromBytes(sig.slice(0, 33));
  } catch {
    return 'R is not a valid point';
  }
  const z = bytesToNumberBE(sig.slice(33));
  if (z >= N) return 'z is not below the group order';
  const P = secp256k1.Point.fromBytes(pk);
  const [[c]] = hash_to_field(concatBytes(sig.slice(0, 33), pk, msg), 1, {
    DST: 'FROST-secp256k1-SHA256-v1chal', p: N, m: 1, k: 128, expand: 'xmd', hash: sha256,
  });
  const lhs = z === 0n ? secp256k1.Point.ZERO : secp256k1.Point.BASE.multiply(z);
  const rhs = c === 0n ? R : R.add(P.multiply(c));
  return lhs.equals(rhs) ? null : 'z*G != R + c*PK';
}

function result(refusal) {
  return refusal === null ? { ok: true } : { ok: false, reason: refusal };
}

export function run(cases) {
  return cases.map((c) => {
    const pk = hexToBytes(c.publicKey);
    const msg = hexToBytes(c.message);
    const sig = hexToBytes(c.signature);
    switch (c.scheme) {
      case 'frost-ed25519':
        return result(ed25519.verify(sig, msg, pk, { zip215: false }) ? null : 'RFC 8032 verification failed');
      case 'frost-taproot':
        return result(schnorr.verify(sig, msg, pk) ? null : 'BIP-340 verification failed');
      case 'frost-secp256k1':
        return result(verifyFrostSecp256k1(pk, msg, sig));
      default:
        throw new Error(`unknown scheme ${c.scheme}`);
    }
  });
}
