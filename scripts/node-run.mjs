// Runs a TypeScript entry point of the engine in Node. tfjs-core's Node build lacks the gradient
// registrations and its ES modules are not Node-resolvable, so the entry is bundled with esbuild from the
// packages' ES module builds first (one copy of tfjs-core, gradients included), then imported.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/node-run.mjs <entry.ts> [args...]');
  process.exit(2);
}
const outDir = join(root, 'node_modules', '.cache', 'webtune');
mkdirSync(outDir, { recursive: true });
const name = basename(entry).replace(/\.ts$/, '');
// Several runs at once (the tests start them in parallel) must never import a bundle another run is still
// writing: each bundle is named by its content's hash and appears whole, by rename, or not at all.
const result = await build({
  entryPoints: [resolve(entry)],
  outfile: join(outDir, name + '.mjs'),
  write: false,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  mainFields: ['module', 'main'],
  logLevel: 'error',
  sourcemap: 'inline',
  // The wasm backend's emscripten glue uses require/__dirname; give the ES module bundle both.
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
  },
});
const code = result.outputFiles[0].contents;
const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
const outfile = join(outDir, `${name}-${hash}.mjs`);
if (!existsSync(outfile)) {
  const partial = `${outfile}.${process.pid}.part`;
  writeFileSync(partial, code);
  renameSync(partial, outfile);
}
// Bundles of this entry from older code, left a day ago or more, are removed.
const ours = new RegExp(`^${name.replace(/[^\w]/g, '\\$&')}-[0-9a-f]{16}\\.mjs$`);
for (const f of readdirSync(outDir)) {
  const old = join(outDir, f);
  if (!ours.test(f) || old === outfile) continue;
  try {
    if (Date.now() - statSync(old).mtimeMs > 86_400_000) rmSync(old, { force: true });
  } catch {
    // another run removed it first
  }
}
process.argv = [process.argv[0], outfile, ...args];
await import(pathToFileURL(outfile).href);
