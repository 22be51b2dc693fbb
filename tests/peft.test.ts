// PEFT adapters: exact names and shapes, export → import round trip, an independent reference applying the
// exported folder agrees with the engine, PEFT's own real-world config is accepted, unsupported fields refused.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../workers/engine/config';
import { fullLogits } from '../workers/engine/generate';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, exportPeft, importPeft, parsePeftConfig } from '../workers/engine/peft';
import { parseSafetensorsHeader } from '../workers/engine/safetensors';
import { CONFORMANCE, hasConformance, loadEngine, modelDir } from './helpers';
import { loadRef, refGreedy, withPeft } from './reference/llama-ref';
import { chats, makeTrainer } from './train-helpers';

const enc = new TextEncoder();

describe('PEFT adapters', () => {
  // The models of 2026 keep PEFT's module names (q_proj … down_proj): train, export, and an independent
  // reference applying the folder gives the engine's greedy ids.
  it.each(['qwen3-headdim-bf16', 'gemma3-window-bf16', 'llama3-rope-f32'])('%s: LoRA trains, exports PEFT, and the reference applying the folder agrees', async (name) => {
    const engine = await loadEngine(name);
    const t = makeTrainer(engine, chats(), { epochs: 3, batchSize: 4, learningRate: 1e-2, valSplit: 0 }, { rank: 4, alpha: 8 });
    const losses: number[] = [];
    await t.run((e) => e.type === 'steps' && losses.push(...e.points.map((p) => p.loss)));
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]); // it learns
    const { model } = engine.current;
    const files = await exportPeft(engine.adapter!, 'webtune/' + name);
    const header = parseSafetensorsHeader(files.get(ADAPTER_WEIGHTS)!, ADAPTER_WEIGHTS);
    expect(header.tensors.map((x) => x.name)).toContain(`base_model.model.model.layers.${model.config.numLayers - 1}.mlp.down_proj.lora_B.weight`);
    const dir = mkdtempSync(join(tmpdir(), 'peft-'));
    for (const [f, bytes] of files) writeFileSync(join(dir, f), bytes);
    const ref = withPeft(loadRef(modelDir(name)), dir);
    const prompt = engine.current.tokenizer.encodeChat([{ role: 'user', content: 'What color is the sky?' }]);
    const r = await engine.generate({ ids: prompt }, { maxNewTokens: 8 });
    expect(r.ids).toEqual(refGreedy(ref, prompt, 8, engine.current.tokenizer.eosIds));
    t.dispose();
    engine.unload();
  });

  it('export has PEFT names and shapes; import gives identical outputs; a plain reference applying the folder agrees', async () => {
    const name = 'llama-headdim-sharded'; // head_dim ≠ hidden/heads and GQA: the shapes are not all square
    const engine = await loadEngine(name);
    const t = makeTrainer(engine, chats(), { epochs: 2, batchSize: 4, learningRate: 1e-2, valSplit: 0 }, { rank: 4, alpha: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
    await t.run(() => {});
    const { model } = engine.current;
    const files = await exportPeft(engine.adapter!, 'webtune/' + name);
    const cfg = JSON.parse(new TextDecoder().decode(files.get(ADAPTER_CONFIG)!));
    expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: 'webtune/' + name, r: 4, lora_alpha: 8, lora_dropout: 0, bias: 'none', use_rslora: false, fan_in_fan_out: false });
    expect(cfg.target_modules.sort()).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    const header = parseSafetensorsHeader(files.get(ADAPTER_WEIGHTS)!, ADAPTER_WEIGHTS);
    const shapes = Object.fromEntries(header.tensors.map((x) => [x.name, x.shape]));
    const c = model.config; // hidden 64, 4 heads × head_dim 24 = 96, 1 KV head = 24, MLP 96
    expect(shapes['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight']).toEqual([4, 64]);
    expect(shapes['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight']).toEqual([96, 4]);
    expect(shapes['base_model.model.model.layers.2.self_attn.k_proj.lora_B.weight']).toEqual([24, 4]);
    expect(shapes['base_model.model.model.layers.1.self_attn.o_proj.lora_A.weight']).toEqual([4, 96]);
    expect(shapes['base_model.model.model.layers.1.mlp.down_proj.lora_A.weight']).toEqual([4, c.intermediateSize]);
    expect(header.tensors.length).toBe(c.numLayers * 7 * 2);

    const ids = [1, 20, 77, 140, 3, 250, 99];
    const tuned = Array.from(await fullLogits(model, ids, engine.adapter).data());
    const imported = importPeft(files.get(ADAPTER_CONFIG)!, files.get(ADAPTER_WEIGHTS)!, c);
    expect(Array.from(await fullLogits(model, ids, imported).data())).toEqual(tuned);
    engine.setAdapter(imported); // the trained one is freed

    // The independent float64 reference reads the exported folder itself and generates the same ids.
    const dir = mkdtempSync(join(tmpdir(), 'peft-'));
    for (const [f, bytes] of files) writeFileSync(join(dir, f), bytes);
    const ref = withPeft(loadRef(modelDir(name)), dir);
    const prompt = engine.current.tokenizer.encodeChat([{ role: 'user', content: 'What color is the sky?' }]);
    const r = await engine.generate({ ids: prompt }, { maxNewTokens: 10 });
    expect(r.ids).toEqual(refGreedy(ref, prompt, 10, engine.current.tokenizer.eosIds));

    // LoRA scale 0 is the base model.
    const base = await engine.generate({ ids: prompt }, { maxNewTokens: 10, loraScale: 0 });
    expect(base.ids).toEqual(refGreedy(loadRef(modelDir(name)), prompt, 10, engine.current.tokenizer.eosIds));
    t.dispose();
    engine.unload();
  });

  it.skipIf(!hasConformance)("accepts PEFT's own real-world adapter_config.json and ignores what it does not need", () => {
    const text = readFileSync(join(CONFORMANCE, 'peft', 'adapter_config.real-world.json'), 'utf8');
    const model = parseConfig(readFileSync(join(modelDir('llama-tied-gqa-f32'), 'config.json'), 'utf8'));
    const { config, paths } = parsePeftConfig(text, model);
    expect(config).toEqual({ rank: 16, alpha: 32, dropout: 0.05, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], rslora: false });
    expect(paths.length).toBe(model.numLayers * 4);
  });

  it.each([
    ['use_dora', { use_dora: true }],
    ['bias', { bias: 'all' }],
    ['modules_to_save', { modules_to_save: ['lm_head'] }],
    ['rank_pattern', { rank_pattern: { q_proj: 4 } }],
    ['fan_in_fan_out', { fan_in_fan_out: true }],
    ['target_modules', { target_modules: ['embed_tokens'] }],
    ['peft_type', { peft_type: 'IA3' }],
  ])('refuses %s by name', (field, patch) => {
    const model = parseConfig(readFileSync(join(modelDir('llama-tied-gqa-f32'), 'config.json'), 'utf8'));
    const cfg = { peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16, target_modules: ['q_proj'], ...patch };
    expect(() => parsePeftConfig(JSON.stringify(cfg), model)).toThrow(new RegExp(`adapter_config\\.json: "${field}"`));
  });

  it('target_modules as a regular expression selects module paths as PEFT does', () => {
    const model = parseConfig(readFileSync(join(modelDir('llama-tied-gqa-f32'), 'config.json'), 'utf8'));
    const { paths, config } = parsePeftConfig(JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: '.*\\.layers\\.1\\..*(q_proj|v_proj)' }), model);
    expect(paths).toEqual(['model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj']);
    expect(config.targets).toEqual(['q_proj', 'v_proj']);
  });

  it('a weights file that disagrees with the config names the tensor', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    const c = engine.current.model.config;
    const cfg = enc.encode(JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] }));
    const other = await loadEngine('llama-untied-mha-f16', 'cpu');
    const t = makeTrainer(other, chats(), { epochs: 1, valSplit: 0 }, { rank: 2, targets: ['q_proj'] });
    const wrong = (await exportPeft(other.adapter!, 'x')).get(ADAPTER_WEIGHTS)!;
    expect(() => importPeft(cfg, wrong, c)).toThrow(/adapter_model\.safetensors: tensor base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight has shape \[2, 48\] but adapter_config\.json \(r = 2\) together with the model's config\.json implies \[2, 64\]/);
    expect(() => importPeft(cfg, null, c)).toThrow(/adapter_model\.safetensors is missing/);
    t.dispose();
    other.unload();
    engine.unload();
  });

  it('"all-linear" targets every linear module; tensors outside target_modules or for modules the model lacks are refused by name', async () => {
    const engine = await loadEngine('llama-tied-gqa-f32', 'cpu');
    const c = engine.current.model.config;
    const all = parsePeftConfig(JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: 'all-linear' }), c);
    expect(all.config.targets).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    expect(all.paths.length).toBe(c.numLayers * 7);
    // An adapter for q and v, exported, then offered with a config that targets q only.
    const t = makeTrainer(engine, chats(), { epochs: 1, valSplit: 0 }, { rank: 2, targets: ['q_proj', 'v_proj'] });
    const files = await exportPeft(engine.adapter!, 'webtune/llama-tied-gqa-f32');
    const qOnly = enc.encode(JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] }));
    expect(() => importPeft(qOnly, files.get(ADAPTER_WEIGHTS)!, c)).toThrow(/tensor base_model\.model\.model\.layers\.0\.self_attn\.v_proj\.lora_A\.weight is for model\.layers\.0\.self_attn\.v_proj, which adapter_config\.json's target_modules does not include/);
    // The same adapter on a model with fewer layers: its last layer's tensors have no module to go to.
    const fewer = { ...c, numLayers: 1 };
    expect(() => importPeft(files.get(ADAPTER_CONFIG)!, files.get(ADAPTER_WEIGHTS)!, fewer)).toThrow(/model\.layers\.1\.self_attn\.q_proj, which this model does not have \(1 layers/);
    // Another base model named in the config: applied, with a warning; the same id by another path: no warning.
    const info = await engine.importAdapter(Object.fromEntries(files));
    expect(info.warnings).toBeUndefined(); // loaded from .models/llama-tied-gqa-f32, trained as webtune/llama-tied-gqa-f32
    const other = JSON.parse(new TextDecoder().decode(files.get(ADAPTER_CONFIG)!));
    other.base_model_name_or_path = 'Qwen/Qwen2.5-0.5B-Instruct';
    const warned = await engine.importAdapter({ ...Object.fromEntries(files), [ADAPTER_CONFIG]: enc.encode(JSON.stringify(other)) });
    expect(warned.warnings?.[0]).toMatch(/trained on Qwen\/Qwen2\.5-0\.5B-Instruct, but .*llama-tied-gqa-f32 is loaded/);
    t.dispose();
    engine.unload();
  });
});
