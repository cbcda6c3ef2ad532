// Entry point for the C# interop tests: reads {"check": name, "cases": [...]} as JSON on stdin,
// runs checks/<name>.mjs over the cases and prints {"results": [...]} as JSON on stdout.
// Each check module exports `run(cases)` returning one JSON value per case.
import { readFileSync } from 'node:fs';

const input = JSON.parse(readFileSync(0, 'utf8'));
if (!/^[a-z0-9-]+$/.test(input.check)) {
  throw new Error(`bad check name ${input.check}`);
}
const mod = await import(`./checks/${input.check}.mjs`);
const results = await mod.run(input.cases);
process.stdout.write(JSON.stringify({ results }));
