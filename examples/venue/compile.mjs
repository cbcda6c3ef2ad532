// Compiles the example venue's contracts (contracts/*.sol) with solc-js, the npm package `solc` pinned in
// tests/interop/package.json (installed there by `npm ci`), and writes one artifact per contract to
// artifacts/<Contract>.json: the ABI, the creation and runtime bytecode, the compiler version and settings.
//
//   node examples/venue/compile.mjs          writes the artifacts
//   node examples/venue/compile.mjs --check  writes nothing; exits 1 naming each artifact that differs from a fresh compile
//
// The C# test VenueArtifactTests recompiles through tests/interop/checks/venue-compile.mjs and compares the same way.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'tests', 'interop', 'package.json'));

// Fixed settings: the artifacts are reproducible only if these never change silently.
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

/** Compiles every contracts/*.sol; returns { ContractName: artifact text }. Any compiler error or warning fails. */
export function compile() {
  let solc;
  try {
    solc = require('solc');
  } catch {
    throw new Error('solc-js not found: run `npm ci` in tests/interop');
  }
  const dir = path.join(here, 'contracts');
  const sources = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sol')).sort()) {
    sources[`contracts/${file}`] = { content: readFileSync(path.join(dir, file), 'utf8') };
  }
  const output = JSON.parse(solc.compile(JSON.stringify({ language: 'Solidity', sources, settings })));
  const problems = (output.errors ?? []).filter((e) => e.severity === 'error' || e.severity === 'warning');
  if (problems.length > 0) {
    throw new Error(problems.map((e) => e.formattedMessage).join('\n'));
  }
  const artifacts = {};
  for (const sourceName of Object.keys(output.contracts).sort()) {
    for (const [contractName, c] of Object.entries(output.contracts[sourceName])) {
      const artifact = {
        contractName,
        sourceName,
        compiler: { name: 'solc-js', version: solc.version(), optimizer: settings.optimizer, evmVersion: settings.evmVersion },
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      };
      artifacts[contractName] = JSON.stringify(artifact, null, 2) + '\n';
    }
  }
  return artifacts;
}

/** The artifact files as committed: { ContractName: text }. */
export function committed() {
  const dir = path.join(here, 'artifacts');
  const files = {};
  if (existsSync(dir)) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
      files[file.slice(0, -'.json'.length)] = readFileSync(path.join(dir, file), 'utf8');
    }
  }
  return files;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const fresh = compile();
  if (process.argv.includes('--check')) {
    const old = committed();
    const names = [...new Set([...Object.keys(fresh), ...Object.keys(old)])].sort();
    const differing = names.filter((n) => fresh[n] !== old[n]);
    for (const n of differing) {
      console.error(`artifacts/${n}.json ${n in old ? (n in fresh ? 'differs from a fresh compile' : 'has no contract') : 'is missing'}`);
    }
    process.exit(differing.length === 0 ? 0 : 1);
  }
  for (const [name, text] of Object.entries(fresh)) {
    writeFileSync(path.join(here, 'artifacts', `${name}.json`), text);
  }
  console.log(`wrote ${Object.keys(fresh).map((n) => `artifacts/${n}.json`).join(', ')}`);
}
