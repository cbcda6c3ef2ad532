// Post-quantum interop with @noble/post-quantum 0.7 (FIPS 204 ML-DSA, FIPS 205 SLH-DSA) and @noble/curves 2
// (Ed25519, secp256k1) for the composite hybrids (draft-ietf-lamps-pq-composite-sigs construction, see docs/POST-QUANTUM.md).
// Cases (hex without 0x):
//   {op: 'verify', alg, publicKey, message, context, signature}  -> {ok}
//   {op: 'sign',   alg, seed, message, context, deterministic?}  -> {publicKey, signature}
// deterministic: ML-DSA with rnd = 0^32 (FIPS 204 Algorithm 2, deterministic variant) instead of hedged.
// 'seed' is the private key as Conclave stores it: ML-DSA xi (32 bytes); SLH-DSA SK.seed||SK.prf||PK.seed (3n);
// hybrids xi || classical secret (Ed25519 seed or secp256k1 scalar, 32 bytes each).
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { slh_dsa_sha2_128s, slh_dsa_shake_128f } from '@noble/post-quantum/slh-dsa.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';

const SINGLE = {
  'ml-dsa-44': ml_dsa44,
  'ml-dsa-65': ml_dsa65,
  'ml-dsa-87': ml_dsa87,
  'slh-dsa-sha2-128s': slh_dsa_sha2_128s,
  'slh-dsa-shake-128f': slh_dsa_shake_128f,
};

const PREFIX = utf8ToBytes('CompositeAlgorithmSignatures2025');
const HYBRID = {
  'hybrid-ed25519-ml-dsa-65': { label: utf8ToBytes('COMPSIG-MLDSA65-Ed25519-SHA512'), trad: 'ed25519', tradPk: 32 },
  'hybrid-ecdsa-ml-dsa-65': { label: utf8ToBytes('Conclave-COMPSIG-MLDSA65-ECDSA-secp256k1-SHA512'), trad: 'secp256k1', tradPk: 33 },
};
const ML65_PK = 1952;
const ML65_SIG = 3309;

function mPrime(label, context, message) {
  return concatBytes(PREFIX, label, Uint8Array.of(context.length), context, sha512(message));
}

function hybridVerify(h, pk, message, context, sig) {
  if (pk.length !== ML65_PK + h.tradPk || sig.length !== ML65_SIG + 64) return false;
  const m = mPrime(h.label, context, message);
  const pqOk = ml_dsa65.verify(sig.subarray(0, ML65_SIG), m, pk.subarray(0, ML65_PK), { context: h.label });
  const tradSig = sig.subarray(ML65_SIG);
  const tradPk = pk.subarray(ML65_PK);
  const tradOk = h.trad === 'ed25519'
    ? ed25519.verify(tradSig, m, tradPk, { zip215: false })
    : secp256k1.verify(tradSig, sha256(m), tradPk, { prehash: false, lowS: true, format: 'compact' });
  return pqOk && tradOk;
}

function hybridSign(h, seed, message, context, deterministic) {
  const xi = seed.subarray(0, 32);
  const trad = seed.subarray(32);
  const ml = ml_dsa65.keygen(xi);
  const m = mPrime(h.label, context, message);
  const pqSig = ml_dsa65.sign(m, ml.secretKey, deterministic ? { context: h.label, extraEntropy: false } : { context: h.label });
  let tradPk, tradSig;
  if (h.trad === 'ed25519') {
    tradPk = ed25519.getPublicKey(trad);
    tradSig = ed25519.sign(m, trad);
  } else {
    tradPk = secp256k1.getPublicKey(trad, true);
    tradSig = secp256k1.sign(sha256(m), trad, { prehash: false, lowS: true, format: 'compact' });
  }
  return { publicKey: concatBytes(ml.publicKey, tradPk), signature: concatBytes(pqSig, tradSig) };
}

export function run(cases) {
  return cases.map((c) => {
    const message = hexToBytes(c.message);
    const context = hexToBytes(c.context ?? '');
    const single = SINGLE[c.alg];
    const hybrid = HYBRID[c.alg];
    if (!single && !hybrid) throw new Error(`unknown alg ${c.alg}`);
    if (c.op === 'verify') {
      const pk = hexToBytes(c.publicKey);
      const sig = hexToBytes(c.signature);
      const ok = single ? single.verify(sig, message, pk, { context }) : hybridVerify(hybrid, pk, message, context, sig);
      return { ok };
    }
    if (c.op === 'sign') {
      const seed = hexToBytes(c.seed);
      if (hybrid) {
        const r = hybridSign(hybrid, seed, message, context, c.deterministic === true);
        return { publicKey: bytesToHex(r.publicKey), signature: bytesToHex(r.signature) };
      }
      const keys = single.keygen(seed);
      const signature = single.sign(message, keys.secretKey, c.deterministic === true ? { context, extraEntropy: false } : { context });
      return { publicKey: bytesToHex(keys.publicKey), signature: bytesToHex(signature) };
    }
    throw new Error(`unknown op ${c.op}`);
  });
}
