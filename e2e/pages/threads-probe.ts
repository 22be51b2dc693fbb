import { configureBrowserWasm } from '../../workers/browser/wasm-urls';
import { selectBackend } from '../../workers/engine/backend';
import * as tf from '../../workers/engine/tf';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
configureBrowserWasm();
(globalThis as any).probe = async () => {
  const out: Record<string, unknown> = { isolated: globalThis.crossOriginIsolated, cores: navigator.hardwareConcurrency };
  try {
    await selectBackend('wasm');
    out.threadsFlag = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    out.threads = getThreadsCount();
    const a = tf.randomNormal([1024, 1024]);
    const b = tf.randomNormal([1024, 1024]);
    await tf.matMul(a, b).data();
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await tf.matMul(a, b).data();
    out.gflops = (5 * 2 * 1024 ** 3) / ((performance.now() - t0) / 1000) / 1e9;
  } catch (e) {
    out.error = String(e);
  }
  return out;
};
