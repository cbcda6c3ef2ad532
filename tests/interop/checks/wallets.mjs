// Independent check of Conclave.Wallets with @scure/bip39 and @scure/bip32 (plus ethers v6 for EIP-55 addresses
// and @noble for a SLIP-10 ed25519 derivation written from the spec, since @scure/bip32 is secp256k1 only).
// Case: {language, mnemonic, passphrase, path, edPath}. Result per case: what the independent libraries compute:
// {valid, entropy, seed, xprv, xpub, privateKey, publicKey, chainCode, ethereum, ed: {privateKey, publicKey, chainCode, solana}}.
import { mnemonicToSeedSync, validateMnemonic, mnemonicToEntropy } from '@scure/bip39';
import { wordlist as czech } from '@scure/bip39/wordlists/czech.js';
import { wordlist as english } from '@scure/bip39/wordlists/english.js';
import { wordlist as french } from '@scure/bip39/wordlists/french.js';
import { wordlist as italian } from '@scure/bip39/wordlists/italian.js';
import { wordlist as japanese } from '@scure/bip39/wordlists/japanese.js';
import { wordlist as korean } from '@scure/bip39/wordlists/korean.js';
import { wordlist as portuguese } from '@scure/bip39/wordlists/portuguese.js';
import { wordlist as chineseSimplified } from '@scure/bip39/wordlists/simplified-chinese.js';
import { wordlist as spanish } from '@scure/bip39/wordlists/spanish.js';
import { wordlist as chineseTraditional } from '@scure/bip39/wordlists/traditional-chinese.js';
import { HDKey } from '@scure/bip32';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/curves/utils.js';
import { computeAddress, encodeBase58 } from 'ethers';

const lists = {
  english, czech, french, italian, japanese, korean, portuguese, spanish,
  chinese_simplified: chineseSimplified, chinese_traditional: chineseTraditional,
};

// SLIP-10 ed25519: master I = HMAC-SHA512("ed25519 seed", seed); child I = HMAC-SHA512(c, 0x00 || k || ser32(i)).
function slip10Ed25519(seed, path) {
  let I = hmac(sha512, new TextEncoder().encode('ed25519 seed'), seed);
  let k = I.slice(0, 32);
  let c = I.slice(32);
  const parts = path.split('/').slice(1);
  for (const p of parts) {
    if (!/^\d+'$/.test(p)) throw new Error(`non-hardened ed25519 index ${p}`);
    const index = (Number(p.slice(0, -1)) + 0x80000000) >>> 0;
    const data = new Uint8Array(37);
    data.set(k, 1);
    new DataView(data.buffer).setUint32(33, index, false);
    I = hmac(sha512, c, data);
    k = I.slice(0, 32);
    c = I.slice(32);
  }
  return { k, c };
}

export function run(cases) {
  return cases.map((c) => {
    const wordlist = lists[c.language];
    if (!wordlist) throw new Error(`unknown language ${c.language}`);
    const valid = validateMnemonic(c.mnemonic, wordlist);
    const entropy = bytesToHex(mnemonicToEntropy(c.mnemonic, wordlist));
    const seed = mnemonicToSeedSync(c.mnemonic, c.passphrase);
    const node = HDKey.fromMasterSeed(seed).derive(c.path);
    const ed = slip10Ed25519(seed, c.edPath);
    const edPublic = ed25519.getPublicKey(ed.k);
    return {
      valid,
      entropy,
      seed: bytesToHex(seed),
      xprv: node.privateExtendedKey,
      xpub: node.publicExtendedKey,
      privateKey: bytesToHex(node.privateKey),
      publicKey: bytesToHex(node.publicKey),
      chainCode: bytesToHex(node.chainCode),
      ethereum: computeAddress('0x' + bytesToHex(node.publicKey)),
      ed: {
        privateKey: bytesToHex(ed.k),
        publicKey: bytesToHex(edPublic),
        chainCode: bytesToHex(ed.c),
        solana: encodeBase58(edPublic),
      },
    };
  });
}
