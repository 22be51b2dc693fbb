// npm run soak [-- --steps N --tokens M]: 1,000 training steps and 1,000 generated tokens on the tiny demo
// model on Node/WASM, tensor count and bytes sampled throughout; writes .reliability/soak.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { selectBackend } from '../workers/engine/backend';
import { soak } from '../workers/bench/soak';
import { setupNodeHost } from '../workers/node/host';

setupNodeHost();
const arg = (name: string, d: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
await selectBackend('wasm');
const r = await soak({ steps: arg('steps', 1000), tokens: arg('tokens', 1000), log: (s) => process.stderr.write(s + '\n') });
mkdirSync('.reliability', { recursive: true });
writeFileSync('.reliability/soak.json', JSON.stringify(r, null, 2));
console.log(`${r.steps} steps: tensors ${r.train.map((s) => s.tensors).join(' ')}; bytes ${r.train[0]?.bytes} → ${r.train[r.train.length - 1]?.bytes}; flat: ${r.trainFlat}`);
console.log(`${r.tokens} tokens: tensors ${r.generate.map((s) => s.tensors).join(' ')}; flat: ${r.generateFlat}; loss ${r.firstLoss.toFixed(2)} → ${r.lastLoss.toFixed(3)}; ${r.seconds.toFixed(0)} s`);
if (!r.trainFlat || !r.generateFlat) process.exit(1);
