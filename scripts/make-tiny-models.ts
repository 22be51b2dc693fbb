// Writes the tiny test models to .models/<variant>/ and the demo model to public/models/demo/.
// Deterministic: the same code writes the same bytes.
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_SPEC, makeModelFiles, TINY_VARIANTS, type TinySpec } from '../workers/tiny/tiny-model';

function write(spec: TinySpec, dir: string) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of makeModelFiles(spec)) writeFileSync(join(dir, name), bytes);
}

for (const spec of TINY_VARIANTS) write(spec, join('.models', spec.name));
write(DEMO_SPEC, join('public', 'models', 'demo'));
console.log(`tiny models: ${TINY_VARIANTS.map((s) => s.name).join(', ')} in .models/; demo in public/models/demo/`);
