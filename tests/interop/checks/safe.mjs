// Safe 1.4.1 transaction hashes computed independently with ethers v6's EIP-712 encoder, and the owners that
// packed signatures recover to (ethers recoverAddress). Case: {chainId, safe, tx:{to,value,data,operation,safeTxGas,
// baseGas,gasPrice,gasToken,refundReceiver,nonce}, packed?}; hex with 0x, integers as decimal strings.
// Result: {hash, owners}.
import { TypedDataEncoder, recoverAddress, Signature } from 'ethers';

const types = {
  SafeTx: [
    { name: 'to', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'data', type: 'bytes' },
    { name: 'operation', type: 'uint8' },
    { name: 'safeTxGas', type: 'uint256' },
    { name: 'baseGas', type: 'uint256' },
    { name: 'gasPrice', type: 'uint256' },
    { name: 'gasToken', type: 'address' },
    { name: 'refundReceiver', type: 'address' },
    { name: 'nonce', type: 'uint256' },
  ],
};

export function run(cases) {
  return cases.map((c) => {
    const hash = TypedDataEncoder.hash({ chainId: c.chainId, verifyingContract: c.safe }, types, c.tx);
    const owners = [];
    const packed = (c.packed ?? '0x').slice(2);
    for (let off = 0; off < packed.length; off += 130) {
      const sig = Signature.from({ r: '0x' + packed.slice(off, off + 64), s: '0x' + packed.slice(off + 64, off + 128), v: parseInt(packed.slice(off + 128, off + 130), 16) });
      owners.push(recoverAddress(hash, sig).toLowerCase());
    }
    return { hash, owners };
  });
}
