// Bad model input fails with an error that names the file and the problem.
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../workers/engine/backend';
import { Engine } from '../workers/engine/engine';
import { MemoryModelFiles } from '../workers/engine/source';
import * as tf from '../workers/engine/tf';
import { setupNodeHost } from '../workers/node/host';
import { makeModelFiles, TINY_VARIANTS } from '../workers/tiny/tiny-model';
import { DirModelFiles } from '../workers/node/dir-files';
import { LoraAdapter } from '../workers/engine/lora';
import { DEFAULT_LORA } from '../workers/shared/defaults';
import { loadEngine, modelDir } from './helpers';
import { chats } from './train-helpers';

const enc = new TextEncoder();
const dec = new TextDecoder();

function variant(edit: (files: Map<string, Uint8Array>) => void, spec = TINY_VARIANTS[0]): MemoryModelFiles {
  const files = makeModelFiles(spec);
  edit(files);
  return new MemoryModelFiles(files, 'test-model');
}

function editJson(files: Map<string, Uint8Array>, name: string, edit: (o: Record<string, unknown>) => void) {
  const o = JSON.parse(dec.decode(files.get(name)!));
  edit(o);
  files.set(name, enc.encode(JSON.stringify(o)));
}

/** Rewrite a safetensors header in place of the original, keeping the data bytes. */
function editHeader(files: Map<string, Uint8Array>, name: string, edit: (h: Record<string, any>) => void) {
  const bytes = files.get(name)!;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(dec.decode(bytes.subarray(8, 8 + n)));
  edit(header);
  const h = enc.encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.byteLength + bytes.byteLength - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.byteLength), true);
  out.set(h, 8);
  out.set(bytes.subarray(8 + n), 8 + h.byteLength);
  files.set(name, out);
}

async function loadError(files: MemoryModelFiles | DirModelFiles): Promise<Error> {
  setupNodeHost();
  await selectBackend('cpu');
  const before = tf.memory().numTensors;
  const engine = new Engine();
  const err = await engine.loadFiles(files, { backend: 'cpu' }).then(
    () => new Error('loaded without error'),
    (e: Error) => e,
  );
  expect(tf.memory().numTensors).toBe(before); // nothing half-loaded stays behind
  return err;
}

describe('bad model input', () => {
  it('missing file names the file', async () => {
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) {
      const e = await loadError(variant((m) => m.delete(f)));
      expect(e.name).toBe('ModelFileMissingError');
      expect(e.message).toContain(f);
    }
  });

  it('missing folder on disk names the file and the folder', async () => {
    const e = await loadError(new DirModelFiles('/nonexistent/model'));
    expect(e.name).toBe('ModelFileMissingError');
    expect(e.message).toMatch(/config\.json is missing from \/nonexistent\/model/);
  });

  it('truncated safetensors says truncated', async () => {
    const e = await loadError(variant((m) => m.set('model.safetensors', m.get('model.safetensors')!.slice(0, 5000))));
    expect(e.name).toBe('ModelFormatError');
    expect(e.message).toMatch(/^model\.safetensors: .*truncated/);
    const tiny = await loadError(variant((m) => m.set('model.safetensors', m.get('model.safetensors')!.slice(0, 5))));
    expect(tiny.message).toMatch(/^model\.safetensors: .*too short/);
  });

  it('header/offset mismatch names the tensor', async () => {
    const e = await loadError(
      variant((m) =>
        editHeader(m, 'model.safetensors', (h) => {
          h['model.norm.weight'].data_offsets[1] += 4;
        }),
      ),
    );
    expect(e.name).toBe('ModelFormatError');
    expect(e.message).toMatch(/model\.safetensors: tensor model\.norm\.weight: data_offsets .* the header does not match the data/);
  });

  it('a header that claims 10 GB is refused without allocating it', async () => {
    const e = await loadError(
      variant((m) =>
        editHeader(m, 'model.safetensors', (h) => {
          h['model.norm.weight'].shape = [50000, 50000];
          h['model.norm.weight'].data_offsets = [0, 50000 * 50000 * 4];
        }),
      ),
    );
    expect(e.message).toMatch(/model\.safetensors: tensor model\.norm\.weight .*truncated/);
  });

  it('unsupported dtype names the tensor and the dtype', async () => {
    const e = await loadError(variant((m) => editHeader(m, 'model.safetensors', (h) => (h['model.norm.weight'].dtype = 'I8'))));
    expect(e.message).toMatch(/model\.norm\.weight has dtype "I8"/);
  });

  it('tensor shape disagreeing with config.json names tensor, both shapes and file', async () => {
    const e = await loadError(variant((m) => editJson(m, 'config.json', (c) => (c.intermediate_size = 100))));
    expect(e.name).toBe('ShapeMismatchError');
    expect(e.message).toMatch(/model\.safetensors: tensor model\.layers\.0\.mlp\.(gate|up|down)_proj\.weight has shape \[.*\] but config\.json implies \[.*100.*\]/);
  });

  it('a tensor config.json needs but the checkpoint lacks is named', async () => {
    const e = await loadError(variant((m) => editJson(m, 'config.json', (c) => (c.tie_word_embeddings = false))));
    expect(e.message).toMatch(/lm_head\.weight/);
  });

  it.each([
    ['architectures', (c: Record<string, unknown>) => (c.architectures = ['MistralForCausalLM'])],
    ['rope_scaling', (c: Record<string, unknown>) => (c.rope_scaling = { type: 'dynamic', factor: 2 })],
    ['rope_parameters', (c: Record<string, unknown>) => (c.rope_parameters = { rope_type: 'yarn', rope_theta: 10000 })],
    ['use_sliding_window', (c: Record<string, unknown>) => (c.use_sliding_window = true)],
    ['layer_types', (c: Record<string, unknown>) => (c.layer_types = ['sliding_attention', 'full_attention'])],
    ['hidden_act', (c: Record<string, unknown>) => (c.hidden_act = 'gelu')],
    ['mlp_bias', (c: Record<string, unknown>) => (c.mlp_bias = true)],
  ])('unsupported config field %s is refused by name', async (field, edit) => {
    const e = await loadError(variant((m) => editJson(m, 'config.json', edit)));
    expect(e.name).toBe('UnsupportedModelError');
    expect(e.message).toContain(`"${field}"`);
  });

  it('a vocab_size smaller than the tokenizer names both', async () => {
    const e = await loadError(variant((m) => editJson(m, 'config.json', (c) => (c.vocab_size = 100))));
    expect(e.name).toBe('ModelFormatError');
    expect(e.message).toMatch(/^tokenizer\.json: produces token ids up to \d+, but config\.json's vocab_size is 100/);
  });

  it('Gemma 3 multimodal checkpoints are refused with the text models named', async () => {
    const e = await loadError(variant((m) => editJson(m, 'config.json', (c) => (c.architectures = ['Gemma3ForConditionalGeneration']))));
    expect(e.name).toBe('UnsupportedModelError');
    expect(e.message).toMatch(/multimodal.*gemma-3-270m.*gemma-3-1b/);
  });

  it('llama3 rope scaling with a missing field names the field', async () => {
    const e = await loadError(variant((m) => editJson(m, 'config.json', (c) => (c.rope_scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 }))));
    expect(e.message).toMatch(/rope_scaling: required field "original_max_position_embeddings" is missing/);
  });

  it('config.json that is not JSON, or lacks a field, says so', async () => {
    const bad = await loadError(variant((m) => m.set('config.json', enc.encode('{"architectures": ['))));
    expect(bad.message).toMatch(/^config\.json: is not valid JSON/);
    const missing = await loadError(variant((m) => editJson(m, 'config.json', (c) => delete c.hidden_size)));
    expect(missing.message).toMatch(/config\.json: required field "hidden_size" is missing/);
  });

  it('accepts rope_parameters with rope_type default (transformers v5 configs)', async () => {
    setupNodeHost();
    const engine = new Engine();
    const files = variant((m) => editJson(m, 'config.json', (c) => {
      delete c.rope_theta;
      c.rope_parameters = { rope_type: 'default', rope_theta: 10000 };
    }));
    const info = await engine.loadFiles(files, { backend: 'cpu' });
    expect(info.config.rope.full).toEqual({ theta: 10000, scaling: { type: 'default' } });
    engine.unload();
  });
});

describe('a failed load keeps what was loaded', () => {
  it('a folder that is not a model (no config.json, a broken tokenizer, a bad index) leaves the model and its adapter in use', async () => {
    setupNodeHost();
    const engine = new Engine();
    const first = await engine.loadFiles(variant(() => {}), { backend: 'cpu' });
    engine.setAdapter(LoraAdapter.create(engine.current.config, { ...DEFAULT_LORA, rank: 2 }, 1));
    const adapter = engine.adapter;
    const answer = async () => (await engine.generate({ ids: [1, 2, 3] }, { maxNewTokens: 4, loraScale: 1 })).ids;
    const before = await answer();
    for (const bad of [
      variant((m) => m.delete('config.json')),
      variant((m) => m.set('tokenizer.json', enc.encode('{oops'))),
      variant((m) => m.set('model.safetensors.index.json', enc.encode('{"weight_map": 3}'))),
    ]) {
      await expect(engine.loadFiles(bad, { backend: 'cpu' })).rejects.toThrow();
      expect(engine.info()?.id).toBe(first.id);
      expect(engine.adapter).toBe(adapter);
      expect(await answer()).toEqual(before);
    }
    engine.unload();
  });
});

describe('checkpoints of another base model', () => {
  it('are refused by name with the base they need, never a raw shape error; the adapter in use stays', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    await engine.train({ examples: chats().slice(0, 2), runId: 'r', train: { maxSteps: 1, epochs: 1, valSplit: 0, batchSize: 2 } });
    const trainedOn = engine.current.id;
    await engine.loadFiles(new DirModelFiles(modelDir('llama-untied-mha-f16')), { backend: 'cpu' }); // hidden 48, not 64
    engine.setAdapter(LoraAdapter.create(engine.current.config, { ...DEFAULT_LORA, rank: 2 }, 1));
    const kept = engine.adapter;
    const err = await engine.useCheckpoint('r', 'epoch-1').then(() => null, (e: Error) => e);
    expect(err?.name).toBe('CheckpointMismatchError');
    expect(err?.message).toContain(`Load ${trainedOn} to use it`);
    expect(err?.message).toMatch(/this model needs \[/);
    expect(engine.adapter).toBe(kept);
    engine.unload();
  });
});
