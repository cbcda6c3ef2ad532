// Recompiles the example venue (examples/venue/compile.mjs, solc-js) and returns, per case, the fresh artifacts and
// the committed ones as texts: {fresh: {Contract: text}, committed: {Contract: text}}. The C# test compares them.
import { compile, committed } from '../../../examples/venue/compile.mjs';

export async function run(cases) {
  return cases.map(() => ({ fresh: compile(), committed: committed() }));
}
