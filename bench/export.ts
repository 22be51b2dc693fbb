// npm run bench:export — export of a random-weight model in SmolLM2-135M-Instruct's exact shape with an
// adapter on every linear module: GGUF f16 and q8_0, and the merged folder in BF16, each written to a sink that
// counts and drops the bytes (the disk is not what is measured). Each rate is put next to this machine's
// memory copy bandwidth, measured in the same run: an export reads and writes every weight at least once.
import os from 'node:os';
import * as tf from '../workers/engine/tf';
import { selectBackend } from '../workers/engine/backend';
import { writeModelGguf } from '../workers/engine/export/gguf-model';
import { writeMergedFolder } from '../workers/engine/export/merged';
import type { ByteSink } from '../workers/engine/export/sink';
import { loadModel } from '../workers/engine/load';
import { DEFAULT_LORA, LoraAdapter } from '../workers/engine/lora';
import { MemoryModelFiles } from '../workers/engine/source';
import { setupNodeHost } from '../workers/node/host';
import { makeModelFiles, SMOLLM2_135M_SHAPE } from '../workers/tiny/tiny-model';

setupNodeHost();
await selectBackend('wasm');
const log = (s: string) => process.stderr.write(s + '\n');

/** Bytes per second of copying a 256 MiB buffer, best of 5: the rate no export can beat. */
function copyBandwidth(): number {
  const src = new Float32Array(64 * 2 ** 20).fill(1.5);
  const dst = new Float32Array(src.length);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    dst.set(src);
    best = Math.min(best, performance.now() - t0);
  }
  return src.byteLength / (best / 1000);
}

class CountingSink implements ByteSink {
  bytes = 0;
  async write(b: Uint8Array): Promise<void> {
    this.bytes += b.byteLength;
  }
  async close(): Promise<void> {}
}

log('generating random weights in SmolLM2-135M shape');
const loaded = await loadModel(new MemoryModelFiles(makeModelFiles(SMOLLM2_135M_SHAPE, 7), SMOLLM2_135M_SHAPE.name));
const adapter = LoraAdapter.create(loaded.config, { ...DEFAULT_LORA, dropout: 0 }, 1);
const copy = copyBandwidth();
log(`copy bandwidth ${(copy / 1e9).toFixed(2)} GB/s`);
const rows: { what: string; seconds: number; bytes: number; rateGBps: number; ofCopy: number }[] = [];
async function measure(what: string, run: (sink: CountingSink) => Promise<void>) {
  const sink = new CountingSink();
  const t0 = performance.now();
  await run(sink);
  const seconds = (performance.now() - t0) / 1000;
  const rateGBps = sink.bytes / seconds / 1e9;
  rows.push({ what, seconds, bytes: sink.bytes, rateGBps, ofCopy: (sink.bytes / seconds) / copy });
  log(`${what}: ${seconds.toFixed(2)} s, ${(sink.bytes / 2 ** 20).toFixed(0)} MiB`);
}
const before = tf.memory().numTensors;
await measure('gguf f16', (s) => writeModelGguf(loaded, adapter, s, { type: 'f16' }));
await measure('gguf q8_0', (s) => writeModelGguf(loaded, adapter, s, { type: 'q8_0' }));
await measure('merged bf16', async (s) => void (await writeMergedFolder(loaded, adapter, { file: async () => s }, { dtype: 'BF16' })));
if (tf.memory().numTensors !== before) throw new Error(`export left ${tf.memory().numTensors - before} tensors behind`);

const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
console.log(`\n${machine}; ${new Date().toISOString().slice(0, 10)}; copy bandwidth ${(copy / 1e9).toFixed(2)} GB/s\n`);
console.log('| export (135M shape, adapter on all 7 modules) | time | written | rate | of copy bandwidth |\n| --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.what} | ${r.seconds.toFixed(2)} s | ${(r.bytes / 2 ** 20).toFixed(0)} MiB | ${(r.rateGBps * 1000).toFixed(0)} MB/s | ${(100 * r.ofCopy).toFixed(1)}% |`);
console.log('\n' + JSON.stringify({ machine, copyGBps: copy / 1e9, rows }));
