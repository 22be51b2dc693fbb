// A local HTTP server for model-loading tests, with faults on demand. Loopback only.
//   /ok/<model>/<file>       the file, with Content-Length
//   /chunked/<model>/<file>  the file, chunked (no Content-Length)
//   /auth/<model>/<file>     401, as the Hub answers for gated, private or misspelled repos
//   /cut/<model>/<file>      safetensors files stop halfway and the connection is destroyed
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MODELS_DIR } from './helpers';

export interface TestServer {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

export async function startModelServer(): Promise<TestServer> {
  const requests: string[] = [];
  const server: Server = createServer(async (req, res) => {
    requests.push(req.url ?? '');
    const [, mode, model, ...rest] = (req.url ?? '').split('/');
    const file = rest.join('/');
    if (mode === 'auth') {
      res.writeHead(401).end('unauthorized');
      return;
    }
    let body: Buffer;
    try {
      body = await readFile(join(MODELS_DIR, model, file));
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    if (mode === 'chunked') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(body.subarray(0, body.length >> 1));
      res.end(body.subarray(body.length >> 1));
    } else if (mode === 'cut' && file.endsWith('.safetensors')) {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 20));
    } else {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
