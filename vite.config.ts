import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';
import { ISOLATION_HEADERS } from './src/lib/isolation-headers';

const ISOLATION = { ...ISOLATION_HEADERS };

export default defineConfig({
  plugins: [
    svelte(),
    // Offline: the app shell, the WASM binaries, the engine worker and the built-in demo model are
    // precached by the service worker in src/sw.ts, which also adds the isolation headers on hosts that send none.
    // Models downloaded from the Hub live in Cache Storage (see workers/engine/source.ts); datasets, runs and
    // checkpoints in IndexedDB.
    VitePWA({
      strategies: 'injectManifest',
      srcDir: 'src',
      filename: 'sw.ts',
      registerType: 'autoUpdate',
      injectRegister: 'auto',
      manifest: {
        name: 'webtune',
        short_name: 'webtune',
        description: 'Fine-tune small language models in your browser, on your own GPU, offline.',
        theme_color: '#4f46e5',
        background_color: '#f6f7f9',
        display: 'standalone',
        icons: [{ src: 'favicon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' }],
      },
      injectManifest: {
        globPatterns: ['**/*.{js,css,html,wasm,svg,json,jsonl,safetensors}'],
        maximumFileSizeToCacheInBytes: 8 * 1024 * 1024,
      },
    }),
  ],
  // The dev server serves tfjs's ES modules as they are (one URL per module, so the deep imports in
  // workers/engine/tf.ts and the backends share one tfjs-core); only CommonJS code (their dependencies, and the
  // WASM backend's Emscripten glue, bundled with tfjs-core left outside) is pre-bundled.
  optimizeDeps: {
    exclude: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-webgpu'],
    include: ['@tensorflow/tfjs-core > seedrandom', '@tensorflow/tfjs-core > long', '@tensorflow/tfjs-backend-cpu > seedrandom', '@tensorflow/tfjs-backend-wasm', 'idb', 'comlink', 'fflate', 'uplot', '@huggingface/tokenizers', '@huggingface/jinja'],
  },
  appType: 'mpa', // a missing file is a 404, as on the Hub, not index.html
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4000 },
  // Cross-origin isolation, so that WASM runs threaded (SharedArrayBuffer); see src/lib/isolation-headers.ts. On a
  // static host that sends no headers the service worker adds them after one reload of the first visit; in a
  // browser without credentialless WASM runs on one core, and the page says so.
  server: { host: '127.0.0.1', port: 5173, headers: ISOLATION },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true, headers: ISOLATION },
});
