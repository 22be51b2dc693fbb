// The WebGPU device, owned here rather than inside tfjs-backend-webgpu, so that its loss is seen and a
// fresh device can replace it without reloading the page.
//
// A device can be lost at any time: a driver reset, the GPU process crashing, the OS reclaiming memory, or
// GPUDevice.destroy(). Every buffer on it is gone, so the loaded weights and a running step are gone too.
// Whoever is using it is told (`onDeviceLost`); the next `registerWebGpu()` (done by selectBackend when the
// device was lost) makes the next tf.setBackend('webgpu') request a new device.
import * as tf from './tf';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';

type Listener = (message: string) => void;

let lostMessage: string | null = null;
let generation = 0;
const listeners = new Set<Listener>();

let bindingLimit: number | null = null;

/** The current device's maxStorageBufferBindingSize: the largest tensor one kernel can read. */
export function storageBindingLimit(): number | null {
  return bindingLimit;
}

/** Why the current device was lost, or null while it works (or none was created). */
export function deviceLost(): string | null {
  return lostMessage;
}

/**
 * After a GPU operation failed: was it because the device is being lost? A failed read can arrive before the
 * device's `lost` promise settles, so wait a moment for it.
 */
export async function lossBehind(waitMs = 1000): Promise<string | null> {
  if (lostMessage || !generation) return lostMessage;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, waitMs);
    const off = onDeviceLost(done);
    function done() {
      clearTimeout(timer);
      off();
      resolve();
    }
  });
  return lostMessage;
}

/** Call `fn` whenever a device in use is lost. Returns an unsubscribe function. */
export function onDeviceLost(fn: Listener): () => void {
  listeners.add(fn);
  return () => void listeners.delete(fn);
}

/** How many are listening (each Engine until it is disposed). */
export function deviceLossListenerCount(): number {
  return listeners.size;
}

/** The limits worth asking for: the adapter's own, so large weight buffers fit (and a fused kernel may bind more
 * than WebGPU's guaranteed 8 storage buffers where the GPU allows it). */
function limitsOf(adapter: GPUAdapter): Record<string, number> {
  const l = adapter.limits;
  return {
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
  };
}

async function createBackend(): Promise<WebGPUBackend> {
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) throw new Error('WebGPU is not available here');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('no WebGPU adapter was granted');
  const requiredFeatures = (['timestamp-query'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits: limitsOf(adapter) });
  bindingLimit = device.limits.maxStorageBufferBindingSize;
  const mine = ++generation;
  lostMessage = null;
  void device.lost.then((info) => {
    if (mine !== generation) return; // an older device, already replaced
    // A destroy() says only "Device was destroyed."; other losses carry the browser's reason.
    lostMessage = info.reason === 'destroyed' ? 'the GPU device was destroyed' : `the GPU device was lost${info.message ? ` (${info.message.replace(/\.$/, '')})` : ''}`;
    for (const fn of listeners) fn(lostMessage);
  });
  return new WebGPUBackend(device, adapter.info);
}

/**
 * Register (or re-register) the 'webgpu' backend with a factory that creates a fresh, watched device.
 * A previous instance is disposed; the kernels tfjs-backend-webgpu registered stay.
 */
export function registerWebGpu(): void {
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  generation++; // a late loss report from the old device is ignored
  lostMessage = null;
  tf.registerBackend('webgpu', createBackend, 3);
}
