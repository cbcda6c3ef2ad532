// Taproot key-path spends checked with bitcoinjs-lib (BIP-341/BIP-86 done by bitcoinjs itself) and @noble/curves.
// Two steps, each a separate run (Conclave signs in between, through its REST API):
//  {op: "prepare", internalKey}            -> {address, outputKey, sighash}
//     bitcoinjs derives the P2TR output from the x-only internal key (payments.p2tr({internalPubkey}): bitcoinjs
//     computes hash_TapTweak and Q itself; the ECC adapter below only adds points), builds a transaction spending
//     100000 sat from that output back to the same address, and computes its BIP-341 signature hash with
//     Transaction.hashForWitnessV1 (SIGHASH_DEFAULT).
//  {op: "spend", internalKey, signature}   -> {ok, psbtValid, witnessValid, nobleValid, txid, outputKey, address}
//     rebuilds the same transaction as a PSBT, puts the 64-byte signature in tapKeySig, lets bitcoinjs validate it
//     (Psbt.validateSignaturesOfInput recomputes the sighash and the prevout's output key; the validator is noble's
//     BIP-340 verify), finalizes and extracts the transaction (witness = [signature]), checks the witness through
//     payments.p2tr({output, witness}), and verifies the signature again on the extracted transaction's own sighash
//     under the output key read from the spent script. ok = all three.
// Everything is deterministic in the internal key, so both runs build the same transaction.
import * as bitcoin from 'bitcoinjs-lib';
import { secp256k1, schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hexToBytes, bytesToHex, bytesToNumberBE, concatBytes } from '@noble/curves/utils.js';

const Point = secp256k1.Point;
const N = Point.Fn.ORDER;

// The two curve operations bitcoinjs-lib asks of its ECC library for P2TR (it checks them against its own vectors
// in initEccLib): is this a valid x-only key, and lift_x(P) + t*G with the parity of the result.
const ecc = {
  isXOnlyPoint(p) {
    if (!(p instanceof Uint8Array) || p.length !== 32) return false;
    try {
      schnorr.utils.lift_x(bytesToNumberBE(p));
      return true;
    } catch {
      return false;
    }
  },
  xOnlyPointAddTweak(p, tweak) {
    const t = bytesToNumberBE(tweak);
    if (t >= N) return null;
    let P;
    try {
      P = schnorr.utils.lift_x(bytesToNumberBE(p));
    } catch {
      return null;
    }
    const Q = t === 0n ? P : P.add(Point.BASE.multiply(t));
    if (Q.equals(Point.ZERO)) return null;
    const c = Q.toBytes(true);
    return { parity: c[0] === 0x03 ? 1 : 0, xOnlyPubkey: c.slice(1) };
  },
};
bitcoin.initEccLib(ecc);

const VALUE = 100000n;
const FEE = 1000n;

function build(internalKeyHex) {
  const internalPubkey = hexToBytes(internalKeyHex);
  const payment = bitcoin.payments.p2tr({ internalPubkey });
  // A made-up previous transaction id, fixed by the internal key.
  const prevTxId = sha256(concatBytes(new TextEncoder().encode('conclave/taproot-check/prevout'), internalPubkey));
  const tx = new bitcoin.Transaction();
  tx.version = 2;
  tx.addInput(prevTxId, 0, 0xfffffffd);
  tx.addOutput(payment.output, VALUE - FEE);
  const sighash = tx.hashForWitnessV1(0, [payment.output], [VALUE], bitcoin.Transaction.SIGHASH_DEFAULT);
  const psbt = new bitcoin.Psbt();
  psbt.setVersion(2);
  psbt.addInput({
    hash: prevTxId,
    index: 0,
    sequence: 0xfffffffd,
    witnessUtxo: { script: payment.output, value: VALUE },
    tapInternalKey: internalPubkey,
  });
  psbt.addOutput({ script: payment.output, value: VALUE - FEE });
  return { payment, tx, sighash, psbt };
}

function prepare(c) {
  const { payment, sighash } = build(c.internalKey);
  return { address: payment.address, outputKey: bytesToHex(payment.pubkey), sighash: bytesToHex(sighash) };
}

function spend(c) {
  const { payment, psbt } = build(c.internalKey);
  const signature = hexToBytes(c.signature);
  const result = { ok: false, psbtValid: false, witnessValid: false, nobleValid: false, address: payment.address, outputKey: bytesToHex(payment.pubkey) };
  try {
    psbt.updateInput(0, { tapKeySig: signature });
    result.psbtValid = psbt.validateSignaturesOfInput(0, (pubkey, hash, sig) => schnorr.verify(sig, hash, pubkey));
    if (!result.psbtValid) return result;
    psbt.finalizeAllInputs();
    const tx = psbt.extractTransaction();
    result.txid = tx.getId();
    const witness = tx.ins[0].witness;
    const checked = bitcoin.payments.p2tr({ output: payment.output, witness });
    result.witnessValid = witness.length === 1 && bytesToHex(witness[0]) === c.signature.toLowerCase()
      && bytesToHex(checked.signature) === c.signature.toLowerCase() && bytesToHex(checked.pubkey) === bytesToHex(payment.pubkey);
    // The output key as a node would read it from the spent script: OP_1 <32 bytes>.
    const script = payment.output;
    const outputKey = script.slice(2);
    const sighash = tx.hashForWitnessV1(0, [script], [VALUE], bitcoin.Transaction.SIGHASH_DEFAULT);
    result.nobleValid = script[0] === 0x51 && script[1] === 0x20 && schnorr.verify(witness[0], sighash, outputKey);
  } catch (e) {
    result.error = String(e);
    return result;
  }
  result.ok = result.psbtValid && result.witnessValid && result.nobleValid;
  return result;
}

export function run(cases) {
  return cases.map((c) => {
    switch (c.op) {
      case 'prepare':
        return prepare(c);
      case 'spend':
        return spend(c);
      default:
        throw new Error(`unknown op ${c.op}`);
    }
  });
}
