// The models kept in Cache Storage: listed with their sizes, deletable. Entries are grouped by the folder
// URL they were downloaded from.
import { CACHE_NAME } from '../engine/source';
import type { CachedModel } from '../shared/types';


export async function listCachedModels(): Promise<CachedModel[]> {
  if (typeof caches === 'undefined') return [];
  const cache = await caches.open(CACHE_NAME);
  const byBase = new Map<string, CachedModel>();
  for (const req of await cache.keys()) {
    const base = req.url.slice(0, req.url.lastIndexOf('/'));
    const res = await cache.match(req);
    const bytes = Number(res?.headers.get('content-length') ?? 0);
    const m = byBase.get(base) ?? { base, files: 0, bytes: 0 };
    m.files++;
    m.bytes += bytes;
    byBase.set(base, m);
  }
  return [...byBase.values()].sort((a, b) => b.bytes - a.bytes);
}

export async function deleteCachedModel(base: string): Promise<void> {
  const cache = await caches.open(CACHE_NAME);
  for (const req of await cache.keys()) if (req.url.startsWith(base + '/')) await cache.delete(req);
}
