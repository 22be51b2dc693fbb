// The engine in a module Web Worker, behind comlink. The UI imports only the type WorkerApi.
import * as Comlink from 'comlink';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { configureWasm } from './engine/backend';
import { Engine, type EngineApi } from './engine/engine';

configureWasm({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});

const engine = new Engine(new URL(`${import.meta.env.BASE_URL}models/demo`, self.location.origin).href);

const api: EngineApi = {
  load: (source, options, onProgress) => engine.load(source, options, onProgress),
  generate: (input, options, onToken) => engine.generate(input, options, onToken),
  stop: () => engine.stop(),
  unload: () => engine.unload(),
  info: () => engine.info(),
};

Comlink.expose(api);

export type WorkerApi = typeof api;
