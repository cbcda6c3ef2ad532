// Independent re-implementation of Conclave's non-hardened ed25519 derivation and child signing, written from the
// description in docs/WALLETS.md ("Non-hardened ed25519 derivation") with @noble/curves (points, group order) and
// @noble/hashes (HMAC-SHA512, SHA-512); it shares no code with Conclave.Crypto.Ed25519.Ed25519HdDerivation.
// Case: {seed, chainCode, path: [int], message}, hex without 0x. Result per case:
// {parentPublicKey, tweaks: [hex], childPublicKey, childChainCode, solana, signature, verifies}.
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/curves/utils.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { encodeBase58 } from 'ethers';

const Point = ed25519.Point;
const L = Point.Fn.ORDER;
const te = new TextEncoder();
const DERIVE_DOMAIN = te.encode('Conclave/FROST/ed25519-hd/v1');
const PREFIX_DOMAIN = te.encode('Conclave/ed25519-hd/prefix/v1');

function leToBigInt(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

function bigIntToLe32(n) {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function ser32(i) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, i, false);
  return b;
}

// One step: I = HMAC-SHA512(c, domain || A || ser32(i)); t = LE(I_L) mod L; A' = A + t*B; c' = I_R.
function step(A, c, index) {
  if (!Number.isInteger(index) || index < 0 || index >= 0x80000000) throw new Error(`index ${index} is not non-hardened`);
  const I = hmac(sha512, c, concat(DERIVE_DOMAIN, A.toBytes(), ser32(index)));
  const t = leToBigInt(I.slice(0, 32)) % L;
  const next = t === 0n ? A : A.add(Point.BASE.multiply(t));
  return { A: next, c: I.slice(32), t };
}

export function run(cases) {
  return cases.map((k) => {
    const seed = hexToBytes(k.seed);
    const message = hexToBytes(k.message);
    // RFC 8032 §5.1.5: h = SHA-512(seed); a = clamp(h[0..32]); prefix = h[32..64].
    const h = sha512(seed);
    const head = h.slice(0, 32);
    head[0] &= 248;
    head[31] &= 127;
    head[31] |= 64;
    let a = leToBigInt(head) % L;
    const prefix = h.slice(32);
    const parent = Point.BASE.multiply(a);
    let A = parent;
    let c = hexToBytes(k.chainCode);
    const tweaks = [];
    for (const index of k.path) {
      const s = step(A, c, index);
      A = s.A;
      c = s.c;
      a = (a + s.t) % L;
      tweaks.push(bytesToHex(bigIntToLe32(s.t)));
    }
    if (A.is0()) throw new Error('derived the identity');
    const Abytes = A.toBytes();
    // Child signing: prefix' = SHA-512(prefix domain || prefix || A')[0..32]; then RFC 8032 §5.1.6 with a' and prefix'.
    const childPrefix = sha512(concat(PREFIX_DOMAIN, prefix, Abytes)).slice(0, 32);
    const r = leToBigInt(sha512(concat(childPrefix, message))) % L;
    const R = Point.BASE.multiply(r).toBytes();
    const e = leToBigInt(sha512(concat(R, Abytes, message))) % L;
    const S = (r + e * a) % L;
    const signature = concat(R, bigIntToLe32(S));
    return {
      parentPublicKey: bytesToHex(parent.toBytes()),
      tweaks,
      childPublicKey: bytesToHex(Abytes),
      childChainCode: bytesToHex(c),
      solana: encodeBase58(Abytes),
      signature: bytesToHex(signature),
      verifies: ed25519.verify(signature, message, Abytes, { zip215: false }),
    };
  });
}
