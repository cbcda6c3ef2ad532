// Runs the agent example of docs/POLICY.md (an ethers v6 provider whose FetchRequest signs each request with
// RFC 9421 as an agent) like docsnippet.mjs, but a failure is a result rather than a crash, so a refused request can be
// checked too. Case: {code, env}. Result: {lines: [...], error: null | "message"}.
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
    let error = null;
    try {
      // A query string keeps each case a distinct module (an identical data: URL would be imported once).
      await import('data:text/javascript,' + encodeURIComponent(code + `\n// case ${results.length}`));
    } catch (e) {
      error = String(e?.shortMessage ?? e?.message ?? e);
    } finally {
      console.log = log;
    }
    results.push({ lines, error });
  }
  return results;
}
