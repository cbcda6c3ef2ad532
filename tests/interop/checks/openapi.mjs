// Validates an OpenAPI document against the official OpenAPI Initiative JSON Schema for its version (3.0 or 3.1),
// with every $ref resolved, using @seriousme/openapi-schema-validator (independent of the .NET generator).
// Case: {document: <the parsed document>}. Result: {valid, version, errors: [string]}.
import { Validator } from '@seriousme/openapi-schema-validator';

export async function run(cases) {
  const results = [];
  for (const c of cases) {
    const validator = new Validator();
    const r = await validator.validate(c.document);
    const errors = r.valid ? [] : (Array.isArray(r.errors) ? r.errors : [r.errors]).map((e) => JSON.stringify(e).slice(0, 500));
    if (r.valid) {
      // Every $ref must point at something the document defines.
      try {
        validator.resolveRefs();
      } catch (e) {
        errors.push(`unresolved $ref: ${e.message}`);
      }
    }
    results.push({ valid: errors.length === 0, version: validator.version, errors });
  }
  return results;
}
