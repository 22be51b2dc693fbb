// A local stand-in of the Hugging Face Hub and its CDN, on two loopback ports, serving the tiny models:
//   <hub>/<owner>/<repo>/resolve/<revision>/<file>   as the Hub: JSON and tokenizer files itself, *.safetensors
//                                                    as a 302 to the CDN's signed URL (another origin)
//   repos webtune/<model>             open
//         webtune-gated/<model>       401 + X-Error-Code: GatedRepo without `Authorization: Bearer <TOKEN>`
//         webtune-flaky/<model>       the CDN cuts each file's first download halfway, then honours Range
//         webtune-norange/<model>     the CDN cuts each file's first download halfway, then ignores Range
// Every request is recorded with its Authorization and Range headers. Both answer CORS as the Hub does, so a
// page on another origin can use them (its preflights are answered, not recorded).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const MODELS_DIR = '.models'; // (not imported from helpers.ts: the browser tests load this file without the engine)

export const HUB_TOKEN = 'hf_standin_token';

export interface Seen {
  server: 'hub' | 'cdn';
  path: string;
  authorization: string | undefined;
  range: string | undefined;
}

export interface StandInHub {
  endpoint: string;
  cdn: string;
  seen: Seen[];
  close(): Promise<void>;
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'authorization, range',
  'access-control-expose-headers': 'content-length, content-range, x-error-code, accept-ranges',
};

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    for (const [k, v] of Object.entries(CORS)) res.setHeader(k, v);
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

export async function startStandInHub(): Promise<StandInHub> {
  const seen: Seen[] = [];
  const record = (server: Seen['server'], req: IncomingMessage) =>
    seen.push({ server, path: req.url ?? '', authorization: req.headers.authorization, range: req.headers.range });
  const cutDone = new Set<string>();

  const cdn = await listen(async (req, res) => {
    record('cdn', req);
    const url = new URL(req.url ?? '/', 'http://x');
    const [, , kind, model, file] = url.pathname.split('/'); // /blob/<kind>/<model>/<file>
    if (url.searchParams.get('sig') !== `${model}:${file}`) return void res.writeHead(403).end('bad signature');
    let body: Buffer;
    try {
      body = await readFile(join(MODELS_DIR, model, file));
    } catch {
      return void res.writeHead(404).end();
    }
    const key = `${kind}/${model}/${file}`;
    if ((kind === 'flaky' || kind === 'norange') && !cutDone.has(key)) {
      cutDone.add(key);
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && kind !== 'norange') {
      const start = Number(range[1]);
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
      return void res.end(body.subarray(start));
    }
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });

  const hub = await listen(async (req, res) => {
    record('hub', req);
    const m = /^\/([\w.-]+)\/([\w.-]+)\/resolve\/([\w.-]+)\/([\w.-]+)$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end('not found');
    const [, owner, model, , file] = m;
    const kind = { webtune: 'open', 'webtune-gated': 'gated', 'webtune-flaky': 'flaky', 'webtune-norange': 'norange' }[owner];
    if (!kind) return void res.writeHead(401, { 'x-error-code': 'RepoNotFound' }).end('Repository not found');
    if (kind === 'gated' && req.headers.authorization !== `Bearer ${HUB_TOKEN}`) {
      return void res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end('Access to model is restricted');
    }
    if (file.endsWith('.safetensors')) {
      return void res.writeHead(302, { location: `${cdn.url}/blob/${kind}/${model}/${file}?sig=${encodeURIComponent(`${model}:${file}`)}` }).end();
    }
    let body: Buffer;
    try {
      body = await readFile(join(MODELS_DIR, model, file));
    } catch {
      return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
    }
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });

  return {
    endpoint: hub.url,
    cdn: cdn.url,
    seen,
    close: () => Promise.all([hub.server, cdn.server].map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => {}),
  };
}
