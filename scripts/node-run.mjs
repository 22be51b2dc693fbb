// Runs a TypeScript entry point of the engine in Node. tfjs-core's Node build lacks the gradient
// registrations and its ES modules are not Node-resolvable, so the entry is bundled with esbuild from the
// packages' ES module builds first (one copy of tfjs-core, gradients included), then imported.
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
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
const outfile = join(outDir, basename(entry).replace(/\.ts$/, '') + '.mjs');
await build({
  entryPoints: [resolve(entry)],
  outfile,
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
process.argv = [process.argv[0], outfile, ...args];
await import(pathToFileURL(outfile).href);
