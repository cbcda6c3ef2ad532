// Uses Conclave's Ethereum JSON-RPC endpoint as a remote signer from ethers v6 (JsonRpcProvider + JsonRpcSigner),
// then checks every signature independently with ethers: the sender recovered from the signed transaction, the
// signer of a personal message and of EIP-712 typed data must all equal the key's address.
// Case: {url, token, address, chainId}. Result: {accounts, tx, legacy, messageSigner, typedSigner}, where tx and legacy
// are what ethers decodes from each signed transaction (every field as a string: from, to, type, chainId, nonce, value,
// data, gasLimit, gasPrice, maxFeePerGas, maxPriorityFeePerGas), so the test checks what was signed, not only who signed.
import { FetchRequest, JsonRpcProvider, Transaction, verifyMessage, verifyTypedData, parseEther, parseUnits } from 'ethers';

function fields(t) {
  const s = (v) => (v === null || v === undefined ? null : String(v));
  return {
    from: t.from, to: t.to, type: t.type, chainId: s(t.chainId), nonce: t.nonce, value: s(t.value), data: t.data,
    gasLimit: s(t.gasLimit), gasPrice: s(t.gasPrice), maxFeePerGas: s(t.maxFeePerGas), maxPriorityFeePerGas: s(t.maxPriorityFeePerGas),
  };
}

export async function run(cases) {
  const results = [];
  for (const c of cases) {
    const req = new FetchRequest(c.url);
    req.setHeader('Authorization', `Bearer ${c.token}`);
    const provider = new JsonRpcProvider(req, c.chainId, { staticNetwork: true });
    const accounts = await provider.send('eth_accounts', []);
    const signer = await provider.getSigner(c.address);
    const to = '0x3535353535353535353535353535353535353535';
    const raw = await signer.signTransaction({
      type: 2, chainId: c.chainId, nonce: 7, to, value: parseEther('1.5'), gasLimit: 21000n,
      maxFeePerGas: parseUnits('30', 'gwei'), maxPriorityFeePerGas: parseUnits('2', 'gwei'), data: '0x',
    });
    const tx = Transaction.from(raw);
    const rawLegacy = await signer.signTransaction({
      type: 0, chainId: c.chainId, nonce: 8, to, value: 1n, gasLimit: 50000n, gasPrice: parseUnits('20', 'gwei'), data: '0xdeadbeef',
    });
    const legacy = Transaction.from(rawLegacy);
    const message = 'Conclave says hello';
    const messageSignature = await signer.signMessage(message);
    const domain = { name: 'Conclave', version: '1', chainId: c.chainId, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' };
    const types = { Liquidate: [{ name: 'account', type: 'address' }, { name: 'amount', type: 'uint256' }, { name: 'memo', type: 'string' }] };
    const value = { account: to, amount: 123456789n, memo: 'margin call' };
    const typedSignature = await signer.signTypedData(domain, types, value);
    results.push({
      accounts,
      tx: fields(tx),
      legacy: fields(legacy),
      messageSigner: verifyMessage(message, messageSignature),
      typedSigner: verifyTypedData(domain, types, value, typedSignature),
    });
    provider.destroy();
  }
  return results;
}
