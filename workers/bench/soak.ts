// Soak: many training steps and a long generation on a tiny model, with tf.memory() sampled along the way.
// Memory is owned when, after the first sample (warm-up allocations), tensor count and bytes never move.
import * as tf from '../engine/tf';
import { generateIds } from '../engine/generate';
import { KV_BLOCK } from '../engine/llama';
import { loadModel } from '../engine/load';
import { LoraAdapter, DEFAULT_LORA } from '../engine/lora';
import { MemoryModelFiles } from '../engine/source';
import { DEFAULT_TRAIN } from '../engine/train/config';
import { tokenizeExample } from '../engine/train/examples';
import { Trainer } from '../engine/train/trainer';
import { DEMO_SPEC, makeModelFiles } from '../tiny/tiny-model';

export interface MemorySample {
  at: number; // step or token
  tensors: number;
  bytes: number; // for generation: less the KV cache and rotary tables, which rightly grow with the position
}

export interface SoakResult {
  backend: string;
  steps: number;
  tokens: number;
  train: MemorySample[];
  generate: MemorySample[];
  trainFlat: boolean;
  generateFlat: boolean;
  firstLoss: number;
  lastLoss: number;
  seconds: number;
}

const flat = (s: MemorySample[]) => s.slice(1).every((x) => x.tensors === s[0].tensors && x.bytes === s[0].bytes);
const sample = (at: number, exclude = 0): MemorySample => ({ at, tensors: tf.memory().numTensors, bytes: tf.memory().numBytes - exclude });

export async function soak(opts: { steps: number; tokens: number; samples?: number; log?: (s: string) => void }): Promise<SoakResult> {
  const started = performance.now();
  const { model, tokenizer } = await loadModel(new MemoryModelFiles(makeModelFiles({ ...DEMO_SPEC, maxPositions: opts.tokens + 64 }), 'soak-demo'));
  const examples = ['red', 'green', 'blue', 'amber', 'violet', 'teal', 'coral', 'olive'].map((c, i) =>
    tokenizeExample(tokenizer, { messages: [{ role: 'user', content: `Colour ${i}?` }, { role: 'assistant', content: `${c}.` }] }, 128, 'assistant'),
  );
  const cfg = { ...DEFAULT_TRAIN, epochs: 1_000_000, maxSteps: opts.steps, batchSize: 4, learningRate: 5e-3, valSplit: 0, evalEvery: 0 };
  const adapter = LoraAdapter.create(model.config, { ...DEFAULT_LORA, dropout: 0.05 }, 1);
  const every = Math.max(1, Math.floor(opts.steps / (opts.samples ?? 10)));
  const trainer = new Trainer(model, adapter, examples, [], cfg, { runId: 'soak', baseModel: 'soak-demo', logEvery: every });
  const train: MemorySample[] = [];
  const losses: number[] = [];
  await trainer.run((e) => {
    if (e.type !== 'steps') return;
    losses.push(...e.points.map((p) => p.loss));
    const step = e.points[e.points.length - 1].step;
    if (step % every === 0) {
      train.push(sample(step));
      opts.log?.(`step ${step}: ${train[train.length - 1].tensors} tensors, ${train[train.length - 1].bytes} bytes, loss ${losses[losses.length - 1].toFixed(3)}`);
    }
  });
  trainer.dispose();

  const generate: MemorySample[] = [];
  const tokenEvery = Math.max(1, Math.floor(opts.tokens / (opts.samples ?? 10)));
  let n = 0;
  const { numLayers, numKvHeads, headDim } = model.config;
  const kvBytesPerToken = numLayers * 2 * numKvHeads * headDim * 4; // K and V, float32
  const prompt = tokenizer.encode('Colour 3?', true);
  // The KV cache's own bytes when the n-th token is chosen: the prompt and n − 1 tokens fed, in whole blocks.
  const cacheBytes = (n: number) => Math.ceil((prompt.length + n - 1) / KV_BLOCK) * KV_BLOCK * kvBytesPerToken;
  // No end-of-sequence ids: exactly `tokens` tokens are generated.
  await generateIds(model, prompt, [], { maxNewTokens: opts.tokens, temperature: 1, seed: 7 }, () => {
    if (++n % tokenEvery === 0) generate.push(sample(n, cacheBytes(n) + model.ropeBytes));
  }, () => false, adapter);
  opts.log?.(`generated ${n} tokens: ${generate.map((g) => g.tensors).join(', ')} tensors`);
  adapter.dispose();
  model.dispose();
  return { backend: tf.getBackend(), steps: opts.steps, tokens: n, train, generate, trainFlat: flat(train), generateFlat: flat(generate), firstLoss: losses[0], lastLoss: losses[losses.length - 1], seconds: (performance.now() - started) / 1000 };
}
