// Parses signed Ethereum transactions with ethers v6 (Transaction.from, which recovers the sender).
// Case: {raw}. Result: {from, to, value, nonce, chainId, type, hash} (integers as decimal text).
import { Transaction } from 'ethers';

export async function run(cases) {
  return cases.map((c) => {
    const tx = Transaction.from(c.raw);
    return {
      from: tx.from,
      to: tx.to,
      value: tx.value.toString(),
      nonce: tx.nonce.toString(),
      chainId: tx.chainId.toString(),
      type: tx.type,
      hash: tx.hash,
    };
  });
}
