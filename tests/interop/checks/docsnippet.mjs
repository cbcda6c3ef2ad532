// Runs a JavaScript snippet taken from docs/ as a module (so the docs' examples are the ones tested), with the
// environment it expects, and returns what it printed with console.log. The snippet imports 'ethers'; that import is
// pointed at this folder's installed package, since a module built from text has no node_modules of its own.
// Case: {code, env: {NAME: value}}. Result: {lines: [...]}.
export async function run(cases) {
  const results = [];
  const ethers = import.meta.resolve('ethers');
  for (const c of cases) {
    const code = c.code.replaceAll(`from 'ethers'`, `from '${ethers}'`);
    for (const [k, v] of Object.entries(c.env ?? {})) {
      process.env[k] = v;
    }
    const lines = [];
    const log = console.log;
    console.log = (...args) => lines.push(args.map(String).join(' '));
    try {
      await import('data:text/javascript,' + encodeURIComponent(code));
    } finally {
      console.log = log;
    }
    results.push({ lines });
  }
  return results;
}
