// Copies the JSON Schemas the Python package generates (../schemas/*.schema.json) into
// editor-client/schemas/ so the .vsix carries them (contributes.jsonValidation points there).
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = resolve(here, '..', '..', 'schemas');
const dst = resolve(here, '..', 'schemas');
const required = ['policy', 'config', 'task', 'result', 'provenance', 'plan'].map((k) => `${k}.schema.json`);

if (!existsSync(src)) {
  console.error(`copy-schemas: ${src} does not exist (the Python package generates it)`);
  process.exit(1);
}
rmSync(dst, { recursive: true, force: true });
mkdirSync(dst, { recursive: true });
const files = readdirSync(src).filter((f) => f.endsWith('.json'));
for (const f of files) {
  copyFileSync(join(src, f), join(dst, f));
}
const missing = required.filter((f) => !files.includes(f));
if (missing.length > 0) {
  console.error(`copy-schemas: missing ${missing.join(', ')} in ${src}`);
  process.exit(1);
}
console.log(`copy-schemas: ${files.length} schemas → ${dst}`);
