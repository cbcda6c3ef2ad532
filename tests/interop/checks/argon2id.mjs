// Argon2id (RFC 9106) with @noble/hashes, an implementation independent of libsodium (which Conclave.Crypto.Kdf.Argon2id
// calls). Unlike libsodium's crypto_pwhash it takes the parallelism p, the secret K and the associated data X, so it can
// also be checked on RFC 9106 section 5.3 itself.
// Case: {password (hex), salt (hex), t, m (KiB), p, dkLen, secret? (hex), associatedData? (hex)}. Result: {tag (hex)}.
import { argon2id } from '@noble/hashes/argon2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

export function run(cases) {
  return cases.map((c) => {
    const opts = { t: c.t, m: c.m, p: c.p, dkLen: c.dkLen };
    if (c.secret) opts.key = hexToBytes(c.secret);
    if (c.associatedData) opts.personalization = hexToBytes(c.associatedData);
    return { tag: bytesToHex(argon2id(hexToBytes(c.password), hexToBytes(c.salt), opts)) };
  });
}
