// Hub access against a local stand-in of the Hub and its CDN: HF_ENDPOINT, HF_TOKEN and the token file,
// the token sent to the Hub's origin and never to the CDN it redirects to, gated-model messages, and
// downloads that resume with Range after a cut connection.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../workers/engine/engine';
import type { LoadProgress } from '../workers/shared/types';
import { setupNodeHost } from '../workers/node/host';
import { hubAccessFromEnv } from '../workers/node/hub';
import { modelDir } from './helpers';
import { HUB_TOKEN, startStandInHub, type StandInHub } from './hub-server';
import { loadRef, refGreedy } from './reference/llama-ref';

const run = promisify(execFile);
const MODEL = 'llama-tied-gqa-f32';
let hub: StandInHub;

beforeAll(async () => {
  setupNodeHost();
  hub = await startStandInHub();
});
afterAll(() => hub.close());

async function cli(env: Record<string, string>, ...args: string[]) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HF_')));
  try {
    const { stdout, stderr } = await run(process.execPath, ['scripts/node-run.mjs', 'workers/cli/main.ts', ...args], { env: { ...clean, HOME: mkdtempSync(join(tmpdir(), 'home-')), ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

const generate = (env: Record<string, string>, repo: string) => cli(env, 'generate', '--model', repo, '--prompt-ids', '5,17,200', '--max-new-tokens', '4', '--json');

describe('Hub access (stand-in Hub and CDN on loopback)', () => {
  it('HF_ENDPOINT + HF_TOKEN: a gated model loads; the token reaches the Hub only, never the CDN', async () => {
    const before = hub.seen.length;
    const r = await generate({ HF_ENDPOINT: hub.endpoint, HF_TOKEN: HUB_TOKEN }, `webtune-gated/${MODEL}`);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.ids).toEqual(refGreedy(loadRef(modelDir(MODEL)), [5, 17, 200], 4, [0, 2]));
    const seen = hub.seen.slice(before);
    const toHub = seen.filter((s) => s.server === 'hub');
    const toCdn = seen.filter((s) => s.server === 'cdn');
    expect(toHub.length).toBeGreaterThan(3);
    expect(toHub.every((s) => s.authorization === `Bearer ${HUB_TOKEN}`)).toBe(true);
    expect(toCdn.map((s) => s.path.split('?')[0])).toEqual([`/blob/gated/${MODEL}/model.safetensors`]);
    expect(toCdn.every((s) => s.authorization === undefined)).toBe(true);
  });

  it('the token file huggingface-cli writes ($HF_HOME/token) is used when HF_TOKEN is unset', async () => {
    const home = mkdtempSync(join(tmpdir(), 'hf-home-'));
    writeFileSync(join(home, 'token'), HUB_TOKEN + '\n');
    expect(hubAccessFromEnv({ HF_HOME: home })).toEqual({ token: HUB_TOKEN });
    const r = await generate({ HF_ENDPOINT: hub.endpoint, HF_HOME: home }, `webtune-gated/${MODEL}`);
    expect(r.code, r.stderr).toBe(0);
  });

  it('a gated model without a token says it is gated and how to give one; a refused token says so', async () => {
    const none = await generate({ HF_ENDPOINT: hub.endpoint }, `webtune-gated/${MODEL}`);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/HTTP 401 for http:\/\/127\.0\.0\.1:\d+\/webtune-gated\/.*config\.json: the model is gated\. .*accept its licence.*HF_TOKEN/);
    expect(none.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const wrong = await generate({ HF_ENDPOINT: hub.endpoint, HF_TOKEN: 'hf_wrong' }, `webtune-gated/${MODEL}`);
    expect(wrong.stderr).toMatch(/the model is gated\. Your token was sent but does not give access/);
  });

  it('a repo the Hub does not know is "not found", with the id to check', async () => {
    const r = await generate({ HF_ENDPOINT: hub.endpoint }, `nobody/${MODEL}`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/HTTP 401 for .*nobody\/.*: not found\. Check the repository id/);
  });

  it.each([
    ['webtune-flaky', 'resumes with Range from the bytes already received'],
    ['webtune-norange', 'restarts when the server ignores Range'],
  ])('%s: a download cut halfway %s; progress never goes back; the weights are whole', async (owner) => {
    const before = hub.seen.length;
    const events: LoadProgress[] = [];
    const engine = new Engine();
    await engine.load({ kind: 'hub', repo: `${owner}/${MODEL}`, hub: { endpoint: hub.endpoint } }, { backend: 'wasm' }, (p) => events.push(p));
    const size = readFileSync(join(modelDir(MODEL), 'model.safetensors')).length;
    const cdn = hub.seen.slice(before).filter((s) => s.server === 'cdn');
    expect(cdn).toHaveLength(2);
    expect(cdn[1].range).toBe(`bytes=${size >> 1}-`);
    const weights = events.filter((e): e is LoadProgress & { stage: 'file' } => e.stage === 'file' && e.file === 'model.safetensors');
    for (let i = 1; i < weights.length; i++) expect(weights[i].loaded).toBeGreaterThan(weights[i - 1].loaded);
    expect(weights[weights.length - 1].loaded).toBe(size);
    const r = await engine.generate({ ids: [5, 17, 200] }, { maxNewTokens: 4 });
    expect(r.ids).toEqual(refGreedy(loadRef(modelDir(MODEL)), [5, 17, 200], 4, [0, 2]));
    engine.unload();
  });
});
