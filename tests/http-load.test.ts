// Loading over HTTP: byte progress with tested invariants, and clear errors for 401/404/cut connections.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../workers/engine/engine';
import type { LoadProgress } from '../workers/shared/types';
import { hubBaseUrl } from '../workers/engine/source';
import { setupNodeHost } from '../workers/node/host';
import { startModelServer, type TestServer } from './http-server';

let server: TestServer;
beforeAll(async () => {
  setupNodeHost();
  server = await startModelServer();
});
afterAll(() => server.close());

async function load(path: string, onProgress?: (p: LoadProgress) => void) {
  const engine = new Engine();
  const info = await engine.load({ kind: 'url', url: `${server.url}/${path}` }, { backend: 'wasm' }, onProgress);
  return { engine, info };
}

describe('loading over HTTP', () => {
  it.each(['ok', 'chunked'])('%s: progress never goes back and ends at the total, per file and for tensors', async (mode) => {
    const events: LoadProgress[] = [];
    const { engine, info } = await load(`${mode}/llama-headdim-sharded`, (p) => events.push(p));
    const files = new Map<string, LoadProgress & { stage: 'file' }>();
    let tensors = 0;
    for (const e of events) {
      if (e.stage === 'file') {
        const prev = files.get(e.file);
        if (prev) expect(e.loaded).toBeGreaterThanOrEqual(prev.loaded);
        if (e.total !== null) expect(e.loaded).toBeLessThanOrEqual(e.total);
        files.set(e.file, e);
      } else if (e.stage === 'tensors') {
        expect(e.loaded).toBeGreaterThanOrEqual(tensors);
        tensors = e.loaded;
        expect(e.total).toBe(info.config.numLayers * 9 + 2 + 1);
      }
    }
    const shards = [...files.keys()].filter((f) => f.endsWith('.safetensors'));
    expect(shards).toEqual(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    for (const last of files.values()) {
      expect(last.loaded).toBeGreaterThan(0);
      if (mode === 'ok') expect(last.loaded).toBe(last.total);
      else expect(last.total).toBeNull();
    }
    expect(tensors).toBe(info.config.numLayers * 9 + 3);
    const r = await engine.generate({ ids: [1, 2, 3] }, { maxNewTokens: 3 });
    expect(r.ids.length).toBeGreaterThan(0);
    engine.unload();
  });

  it('401 explains gated/private/misspelled and names the URL', async () => {
    const e = await load('auth/llama-tied-gqa-f32').catch((x: Error) => x);
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).name).toBe('HubAccessError');
    expect((e as Error).message).toMatch(/HTTP 401 for http:\/\/127\.0\.0\.1:\d+\/auth\/llama-tied-gqa-f32\/config\.json: .*private, gated, or does not exist/);
  });

  it('404 on config.json says to check the id; on a weight file names the missing file', async () => {
    const e = (await load('ok/no-such-model').catch((x: Error) => x)) as Error;
    expect(e.name).toBe('HubAccessError');
    expect(e.message).toMatch(/HTTP 404 .*no-such-model\/config\.json: not found/);
  });

  it('a connection lost mid-download says how far it got and keeps nothing partial', async () => {
    const e = (await load('cut/llama-tied-gqa-f32').catch((x: Error) => x)) as Error;
    expect(e.name).toBe('DownloadInterruptedError');
    expect(e.message).toMatch(/Download of http:\/\/127\.0\.0\.1:\d+\/cut\/llama-tied-gqa-f32\/model\.safetensors stopped after \d+ of \d+ bytes/);
  });

  it('a refused connection says the host cannot be reached, not that a download stopped', async () => {
    // A port that was just listened on and closed: nothing answers there.
    const port = await new Promise<number>((done) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as AddressInfo).port;
        srv.close(() => done(p));
      });
    });
    const engine = new Engine();
    const e = (await engine.load({ kind: 'url', url: `http://127.0.0.1:${port}/model` }, { backend: 'wasm' }).catch((x: Error) => x)) as Error;
    expect(e.name).toBe('SourceUnreachableError');
    expect(e.message).toBe(`127.0.0.1:${port} could not be reached: the name does not resolve, or nothing answers there. Check the address for a typo and that the server is running.`);
  });

  it('Hub ids map to resolve URLs and bad ids are refused', () => {
    expect(hubBaseUrl('HuggingFaceTB/SmolLM2-135M-Instruct')).toBe('https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main');
    expect(hubBaseUrl('Qwen/Qwen2.5-0.5B-Instruct', 'v1.0')).toBe('https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/resolve/v1.0');
    expect(() => hubBaseUrl('not a repo')).toThrow(/owner\/name/);
  });
});
