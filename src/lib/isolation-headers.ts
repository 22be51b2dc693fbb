// The two headers that make a page cross-origin isolated (SharedArrayBuffer, so WASM runs threaded), sent by the dev
// and preview servers (vite.config.ts) and by the service worker (src/sw.ts). COEP `credentialless`, not
// `require-corp`: model files come by CORS fetches either way, but telling a server that refuses CORS from one that
// is down takes a no-cors probe (workers/engine/source.ts), which require-corp blocks.
export const ISOLATION_HEADERS = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'credentialless' } as const;
