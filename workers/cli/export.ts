// `export merged` / `export gguf`: the base model with an adapter folded in, for tools outside webtune.
import { Engine } from '../engine/engine';
import { InvalidRequestError } from '../engine/errors';
import { GGUF_TYPES, writeModelGguf } from '../engine/export/gguf-model';
import { MERGED_DTYPES, writeMergedFolder } from '../engine/export/merged';
import type { DType } from '../engine/safetensors';
import { resolveModelArg } from '../node/dir-files';
import { checkTarget, PendingOutput } from '../node/export-sink';
import { setupNodeHost } from '../node/host';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { llamaFactoryRecipe } from '../engine/export/llama-factory';
import { writeWhole } from '../engine/export/sink';
import { RUN_SETTINGS } from '../engine/peft';
import type { GgufType, RunSettings } from '../shared/types';
import { applyAdapterDir } from './adapter-arg';
import { readDatasetFile } from './validate';
import { weightsArg, backendArg, fillArg, number, parse } from './args';

export const EXPORT_HELP = `
export options:
  export merged --model M [--adapter A] --out DIR [--dtype f32|f16|bf16] [--shard-mb N]
                             a Hugging Face folder with base + adapter folded into the weights (default f32;
                             shards of at most N MB, default 2048)
  export gguf --model M [--adapter A] --out F.gguf [--type f16|q8_0|f32]
                             one GGUF file for llama.cpp / Ollama (Llama, Qwen2, Qwen3; default f16)
  export llama-factory [--model M] --adapter A --data F --out DIR [--name N] [--template T] [--format F] [--fill name=Value]
                             the run of adapter folder A (as train wrote it) as a LLaMA-Factory recipe:
                             DIR/N.yaml, DIR/dataset_info.json and the data as DIR/N.jsonl (N: webtune);
                             --model: the base as the cluster names it (default: the one the run loaded)
  --lora-scale S             how much of the adapter to fold in (default 1 = as trained)
  --overwrite                replace --out if it exists (it is replaced only once the export is complete)
  --backend wasm|cpu|webgpu
  --weights f32|16bit        the base as float32 (default) or in a bf16/f16 file's own 16 bits (half the memory,
                             the same values); int8/int4 would round what the export writes
`;

export async function runExport(args: string[]): Promise<number> {
  const [kind, ...rest] = args;
  if (kind === 'llama-factory') return runRecipe(rest);
  if (kind !== 'merged' && kind !== 'gguf') throw new InvalidRequestError(`export needs what to write: "export merged", "export gguf" or "export llama-factory", got ${kind === undefined ? 'nothing' : `"${kind}"`}.`);
  const v = parse(rest, {
    model: { type: 'string' },
    adapter: { type: 'string' },
    out: { type: 'string' },
    dtype: { type: 'string' },
    type: { type: 'string' },
    'shard-mb': { type: 'string' },
    'lora-scale': { type: 'string' },
    overwrite: { type: 'boolean' },
    backend: { type: 'string' },
    weights: { type: 'string' },
  });
  for (const flag of ['model', 'out'] as const) if (!v[flag]) throw new InvalidRequestError(`--${flag} is required.`);
  const dtype = (v.dtype ?? 'f32').toUpperCase();
  if (kind === 'merged' && !(MERGED_DTYPES as readonly string[]).includes(dtype)) throw new InvalidRequestError(`--dtype must be one of ${MERGED_DTYPES.map((d) => d.toLowerCase()).join(', ')}, got "${v.dtype}".`);
  const type = v.type ?? 'f16';
  if (kind === 'gguf' && !(GGUF_TYPES as readonly string[]).includes(type)) throw new InvalidRequestError(`--type must be one of ${GGUF_TYPES.join(', ')}, got "${type}".`);
  if (kind === 'gguf' && v.dtype) throw new InvalidRequestError('--dtype is for export merged; a GGUF file takes --type.');
  if (kind === 'merged' && v.type) throw new InvalidRequestError('--type is for export gguf; a merged folder takes --dtype.');
  const shardMb = number(v['shard-mb'], '--shard-mb', true);
  if (shardMb !== undefined && shardMb < 1) throw new InvalidRequestError(`--shard-mb must be at least 1, got ${shardMb}.`);
  const loraScale = number(v['lora-scale'], '--lora-scale');
  if (loraScale !== undefined && !v.adapter) throw new InvalidRequestError('--lora-scale needs --adapter.');
  await checkTarget(v.out!, v.overwrite === true);

  setupNodeHost();
  const engine = new Engine();
  await engine.loadFiles(await resolveModelArg(v.model!), { backend: backendArg(v.backend), weights: weightsArg(v.weights, ['f32', '16bit']) ?? 'f32' });
  if (v.adapter) await applyAdapterDir(engine, v.adapter);
  else process.stderr.write('warning: no --adapter: the base model is written as it is.\n');
  const out = new PendingOutput(v.out!);
  const progress = process.stderr.isTTY ? (done: number, total: number) => process.stderr.write(`\rwriting tensors ${done}/${total}`) : undefined;
  try {
    if (kind === 'merged') {
      const files = await writeMergedFolder(engine.current, engine.adapter, await out.folder(), { dtype: dtype as DType, loraScale, shardBytes: shardMb && shardMb * 1024 * 1024 }, progress);
      await out.commit();
      process.stderr.write(`\nwrote ${v.out}: ${files.join(', ')}\n`);
    } else {
      await writeModelGguf(engine.current, engine.adapter, await out.file(), { type: type as GgufType, loraScale }, progress);
      await out.commit();
      process.stderr.write(`\nwrote ${v.out}\n`);
    }
  } catch (e) {
    await out.abandon();
    throw e;
  } finally {
    engine.unload();
  }
  return 0;
}

async function runRecipe(args: string[]): Promise<number> {
  const v = parse(args, { model: { type: 'string' }, adapter: { type: 'string' }, data: { type: 'string' }, out: { type: 'string' }, name: { type: 'string' }, template: { type: 'string' }, format: { type: 'string' }, fill: { type: 'string', multiple: true }, overwrite: { type: 'boolean' } });
  for (const flag of ['adapter', 'data', 'out'] as const) if (!v[flag]) throw new InvalidRequestError(`--${flag} is required.`);
  const settingsFile = join(v.adapter!, RUN_SETTINGS);
  const text = await readFile(settingsFile, 'utf8').catch(() => {
    throw new InvalidRequestError(`${settingsFile} is missing: the recipe is made from the settings that webtune's train records beside the adapter it writes. Train with this version (npm run -s cli -- train ... --out ${v.adapter}).`);
  });
  let settings: RunSettings;
  try {
    settings = JSON.parse(text) as RunSettings;
  } catch (e) {
    throw new InvalidRequestError(`${settingsFile} is not valid JSON (${(e as Error).message}).`);
  }
  const data = await readDatasetFile(v.data!, v.format, fillArg(v.fill));
  for (const e of data.report.errors) process.stderr.write(`${v.data}:${e.line}: ${e.code}: ${e.message} (line left out)\n`);
  await checkTarget(v.out!, v.overwrite === true);
  // --model: where the cluster finds the base (a Hub id, or a path there), when not where this run read it.
  const run = v.model ? { ...settings, baseModel: v.model } : settings;
  const files = llamaFactoryRecipe(run, data.examples.map((e) => e.example), v.name ?? 'webtune', v.template);
  const out = new PendingOutput(v.out!);
  try {
    const folder = await out.folder();
    for (const [name, bytes] of files) await writeWhole(folder, name, bytes);
    await out.commit();
  } catch (e) {
    await out.abandon();
    throw e;
  }
  process.stderr.write(`wrote ${v.out}: ${[...files.keys()].join(', ')}\nrun it with: cd ${v.out} && llamafactory-cli train ${v.name ?? 'webtune'}.yaml\n`);
  return 0;
}
