// Where a model's files come from. Every source reads whole files by name, one at a time, reporting
// byte progress; `optional` files that are absent resolve to null instead of throwing.
import { DownloadInterruptedError, HubAccessError, InvalidRequestError, ModelFileMissingError, SourceUnreachableError } from './errors';
import { DEFAULT_HUB } from '../shared/defaults';
import type { FileProgress, HubAccess, ModelSource } from '../shared/types';

export { DEFAULT_HUB };
export type { FileProgress, HubAccess, ModelSource };


export interface ReadOptions {
  optional?: boolean;
  onWarning?: (message: string) => void;
  onProgress?: (p: FileProgress) => void;
  signal?: AbortSignal;
}

/** A model folder. Implemented for HTTP, browser File objects and (in workers/node/) a Node directory. */
export interface ModelFiles {
  /** Human-readable location, used in error messages. */
  readonly where: string;
  /** The id to record as base_model_name_or_path. */
  readonly id: string;
  read(file: string, opts?: ReadOptions & { optional?: false }): Promise<Uint8Array>;
  read(file: string, opts: ReadOptions & { optional: true }): Promise<Uint8Array | null>;
  read(file: string, opts?: ReadOptions): Promise<Uint8Array | null>;
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;


/** The endpoint as an origin-and-path base without a trailing slash; refused unless http(s). */
export function hubEndpoint(endpoint = DEFAULT_HUB): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new InvalidRequestError(`"${endpoint}" is not a Hub address; give an http(s) URL such as https://huggingface.co or your mirror's.`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new InvalidRequestError(`"${endpoint}" is not an http(s) Hub address.`);
  return u.href.replace(/\/+$/, '');
}

export function hubBaseUrl(repo: string, revision = 'main', endpoint = DEFAULT_HUB): string {
  if (!REPO_ID.test(repo)) throw new InvalidRequestError(`"${repo}" is not a Hub repository id. Write it as owner/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct.`);
  return `${hubEndpoint(endpoint)}/${repo}/resolve/${encodeURIComponent(revision)}`;
}

/** Browsers follow redirects themselves and drop Authorization on a cross-origin hop (Fetch standard); elsewhere we follow them. */
const followsOwnRedirects = typeof document !== 'undefined' || typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';
const MAX_REDIRECTS = 10;
/** A body cut off mid-way is asked for again from where it stopped, this many times in all. */
const RESUME_ATTEMPTS = 4;

/** One HTTP exchange: the response and the URL it finally came from (after redirects). */
interface Exchange {
  res: Response;
  url: string;
}

export const CACHE_NAME = 'webtune-models-v1';

/** Files fetched over HTTP(S), streamed with progress, kept in Cache Storage when the host has it. A cut-off
 * download continues with a Range request from the bytes already received. */
export class HttpModelFiles implements ModelFiles {
  readonly where: string;
  private readonly tokenOrigin: string | null;
  constructor(
    private readonly base: string,
    readonly id: string,
    private readonly useCache = typeof caches !== 'undefined',
    private readonly token?: string,
  ) {
    this.base = base.replace(/\/+$/, '');
    this.where = this.base;
    this.tokenOrigin = token ? new URL(this.base).origin : null;
  }

  read(file: string, opts?: ReadOptions & { optional?: false }): Promise<Uint8Array>;
  read(file: string, opts: ReadOptions & { optional: true }): Promise<Uint8Array | null>;
  async read(file: string, opts: ReadOptions = {}): Promise<Uint8Array | null> {
    const url = `${this.base}/${file}`;
    const cache = this.useCache ? await caches.open(CACHE_NAME) : null;
    const hit = await cache?.match(url);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      opts.onProgress?.({ file, loaded: bytes.byteLength, total: bytes.byteLength, cached: true });
      return bytes;
    }
    let first: Exchange;
    try {
      first = await this.request(url, opts.signal);
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      // Offline, an optional file that no cache holds cannot exist for us: every file a model has was
      // cached when it was first loaded online. Online, a network error is an error.
      if (opts.optional && globalThis.navigator?.onLine === false) return null;
      throw await unreachable(url, e);
    }
    const res = first.res;
    // Static hosts with a single-page-app fallback answer any path with their index.html: no model file is HTML.
    const notFound = res.status === 404 || (res.ok && (res.headers.get('content-type') ?? '').startsWith('text/html'));
    if (notFound && opts.optional) return null;
    // A missing config.json means the repo or URL itself is wrong; any other missing file, an incomplete folder.
    if (notFound && file !== 'config.json') throw new ModelFileMissingError(file, this.where);
    if (notFound || !res.ok) throw new HubAccessError(url, notFound ? 404 : res.status, { hasToken: this.token !== undefined, code: res.headers.get('x-error-code') });
    const bytes = await this.readBody(first, url, file, opts);
    // Only a body that arrived whole is cached: a half-finished download is never stored as complete.
    if (cache) {
      const headers = { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength) };
      try {
        await cache.put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers }));
      } catch (e) {
        // Storage full: the model still loads from memory; it just will not be there offline. Say so.
        if (!isQuotaError(e)) throw e;
        opts.onWarning?.(`${file} could not be kept for offline use: this site's storage is full. Delete cached models, runs or datasets to make room.`);
      }
    }
    return bytes;
  }

  /** The token goes to the Hub's own origin and nowhere else: not to the CDN its downloads redirect to. */
  private headersFor(url: string, extra: Record<string, string>): Record<string, string> {
    const h = { ...extra };
    if (this.token && new URL(url).origin === this.tokenOrigin) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  private async request(url: string, signal: AbortSignal | undefined, extra: Record<string, string> = {}): Promise<Exchange> {
    if (followsOwnRedirects) {
      const res = await fetch(url, { signal, credentials: 'omit', headers: this.headersFor(url, extra) });
      return { res, url: res.url || url };
    }
    let at = url;
    for (let hop = 0; ; hop++) {
      const res = await fetch(at, { signal, redirect: 'manual', headers: this.headersFor(at, extra) });
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) return { res, url: at };
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
      at = new URL(location, at).href;
    }
  }

  /** The whole body. A connection lost mid-way is resumed with Range from the bytes held (restarted when the
   * server ignores Range), RESUME_ATTEMPTS times in all. Progress never goes back. */
  private async readBody(first: Exchange, url: string, file: string, opts: ReadOptions): Promise<Uint8Array> {
    const encoded = (first.res.headers.get('content-encoding') ?? 'identity') !== 'identity';
    const header = first.res.headers.get('content-length');
    // Compressed responses report the compressed length; then the total is unknown (and nothing is resumed).
    const total = header !== null && !encoded ? Number(header) : null;
    let buf = new Uint8Array(total ?? 1 << 20);
    let loaded = 0;
    let reported = -1;
    const report = () => {
      if (loaded <= reported) return;
      reported = loaded;
      opts.onProgress?.({ file, loaded, total, cached: false });
    };
    let { res, url: from } = first;
    for (let attempt = 1; ; attempt++) {
      report();
      let cut: unknown = null;
      const reader = res.body?.getReader();
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = reader ? await reader.read() : { done: true, value: undefined };
        } catch (e) {
          if (opts.signal?.aborted) throw e;
          cut = e;
          break;
        }
        if (chunk.done) break;
        const v = chunk.value;
        if (loaded + v.byteLength > buf.byteLength) {
          if (total !== null) throw new DownloadInterruptedError(url, loaded + v.byteLength, total, new Error('server sent more bytes than announced'));
          const grown = new Uint8Array(Math.max(buf.byteLength * 2, loaded + v.byteLength));
          grown.set(buf.subarray(0, loaded));
          buf = grown;
        }
        buf.set(v, loaded);
        loaded += v.byteLength;
        report();
      }
      if (cut === null && (total === null || loaded === total)) break;
      // Cut off (an error, or fewer bytes than announced): ask for the rest.
      if (attempt >= RESUME_ATTEMPTS || total === null) throw new DownloadInterruptedError(url, loaded, total, cut ?? undefined);
      let next: Exchange;
      try {
        next = await this.request(from, opts.signal, { range: `bytes=${loaded}-` });
        if (!next.res.ok && from !== url) next = await this.request(url, opts.signal, { range: `bytes=${loaded}-` }); // an expired CDN link
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        throw new DownloadInterruptedError(url, loaded, total, e);
      }
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(next.res.headers.get('content-range') ?? '');
      if (next.res.status === 206 && range && Number(range[1]) === loaded && (range[3] === '*' || Number(range[3]) === total)) {
        // the rest follows: keep appending
      } else if (next.res.status === 200) loaded = 0; // no Range support: start again (progress waits until it passes the old mark)
      else {
        await next.res.body?.cancel();
        throw new DownloadInterruptedError(url, loaded, total, new Error(`resuming was answered with HTTP ${next.res.status}`));
      }
      ({ res, url: from } = next);
    }
    return loaded === buf.byteLength ? buf : buf.slice(0, loaded);
  }
}

/** Files from a folder the user dropped (or picked) in the browser. Paths are matched by base name. */
export class BrowserModelFiles implements ModelFiles {
  readonly where: string;
  readonly id: string;
  private readonly byName = new Map<string, File>();
  constructor(files: File[]) {
    for (const f of files) this.byName.set(f.name, f);
    const first = files[0] as (File & { webkitRelativePath?: string }) | undefined;
    const folder = first?.webkitRelativePath?.split('/')[0];
    this.id = folder || 'local-model';
    this.where = `the dropped folder${folder ? ` "${folder}"` : ''}`;
  }

  read(file: string, opts?: ReadOptions & { optional?: false }): Promise<Uint8Array>;
  read(file: string, opts: ReadOptions & { optional: true }): Promise<Uint8Array | null>;
  async read(file: string, opts: ReadOptions = {}): Promise<Uint8Array | null> {
    const f = this.byName.get(file);
    if (!f) {
      if (opts.optional) return null;
      throw new ModelFileMissingError(file, this.where);
    }
    const bytes = new Uint8Array(await f.arrayBuffer());
    opts.onProgress?.({ file, loaded: bytes.byteLength, total: bytes.byteLength, cached: true });
    return bytes;
  }
}

/** Storage is full: the browser's quota, or a full disk (ENOSPC) under a Node host. */
export function isQuotaError(e: unknown): boolean {
  return e instanceof Error && (e.name === 'QuotaExceededError' || /quota/i.test(e.message) || (e as { code?: unknown }).code === 'ENOSPC');
}

/** Resolve a host-independent source. Node adds directories on top of this (workers/node/). */
export function filesFor(source: ModelSource, demoBaseUrl?: string): ModelFiles {
  switch (source.kind) {
    case 'hub':
      return new HttpModelFiles(hubBaseUrl(source.repo, source.revision, source.hub?.endpoint), source.repo, undefined, source.hub?.token || undefined);
    case 'url':
      if (!/^https?:\/\//.test(source.url)) throw new InvalidRequestError(`"${source.url}" is not an http(s) URL.`);
      return new HttpModelFiles(source.url, source.url);
    case 'files':
      return new BrowserModelFiles(source.files);
    case 'demo':
      if (!demoBaseUrl) throw new InvalidRequestError('The demo model is only served with the app.');
      return new HttpModelFiles(demoBaseUrl, 'webtune/tiny-demo-untrained', false);
  }
}

/** Files held in memory (generated models in tests and benchmarks). */
export class MemoryModelFiles implements ModelFiles {
  readonly where: string;
  constructor(
    private readonly files: Map<string, Uint8Array>,
    readonly id = 'in-memory model',
  ) {
    this.where = id;
  }

  read(file: string, opts?: ReadOptions & { optional?: false }): Promise<Uint8Array>;
  read(file: string, opts: ReadOptions & { optional: true }): Promise<Uint8Array | null>;
  async read(file: string, opts: ReadOptions = {}): Promise<Uint8Array | null> {
    const bytes = this.files.get(file);
    if (!bytes) {
      if (opts.optional) return null;
      throw new ModelFileMissingError(file, this.where);
    }
    opts.onProgress?.({ file, loaded: bytes.byteLength, total: bytes.byteLength, cached: true });
    return bytes;
  }
}

/**
 * Why a request failed before any answer, told apart. A browser shows CORS refusals and DNS failures alike (a
 * TypeError), so one opaque no-cors request to the same URL — the source the user chose — tells them apart: it
 * succeeds when the server answered. Node's fetch names the cause (ENOTFOUND, ECONNREFUSED).
 */
async function unreachable(url: string, e: unknown): Promise<Error> {
  if (globalThis.navigator?.onLine === false) return new SourceUnreachableError(url, 'offline');
  const code = (e as { cause?: { code?: string } })?.cause?.code;
  if (code) return ['ENOTFOUND', 'ECONNREFUSED', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(code) ? new SourceUnreachableError(url, 'unreachable') : new DownloadInterruptedError(url, 0, null, e);
  if (!(e instanceof TypeError) || typeof location === 'undefined') return new DownloadInterruptedError(url, 0, null, e);
  const answered = await fetch(url, { mode: 'no-cors', credentials: 'omit', method: 'HEAD' }).then(
    () => true,
    () => false,
  );
  return new SourceUnreachableError(url, answered ? 'cors' : 'unreachable', location.origin);
}
