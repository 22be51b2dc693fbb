// What a WebGPU device is asked to do, counted by wrapping its methods (the benchmark's instrument; the engine
// never uses it): compute dispatches, queue submits, buffers created (tfjs reuses freed ones, so these are the
// new allocations), buffer copies, and GPU→CPU reads (mapAsync on a buffer created for reading). The counts do
// not depend on the GPU: SwiftShader's are a real GPU's.

export interface GpuCounts {
  dispatches: number;
  submits: number;
  buffers: number;
  bufferBytes: number;
  copies: number;
  reads: number;
}

export interface GpuCounter {
  snapshot(): GpuCounts;
}

const ZERO: GpuCounts = { dispatches: 0, submits: 0, buffers: 0, bufferBytes: 0, copies: 0, reads: 0 };

/** The counts from `a` to `b`, divided by `per` (steps, tokens). */
export function countsBetween(a: GpuCounts, b: GpuCounts, per = 1): GpuCounts {
  const out = { ...ZERO };
  for (const k of Object.keys(out) as (keyof GpuCounts)[]) out[k] = (b[k] - a[k]) / per;
  return out;
}

type Fn = (...args: never[]) => unknown;

/** Replace `obj[name]` by a function that counts, then calls the original. */
function wrap<T extends object, K extends keyof T>(obj: T, name: K, before: (...args: Parameters<Extract<T[K], Fn>>) => void, after?: (result: ReturnType<Extract<T[K], Fn>>) => void): void {
  const original = obj[name] as unknown as Fn;
  (obj as Record<K, unknown>)[name] = function (this: unknown, ...args: never[]) {
    before(...(args as Parameters<Extract<T[K], Fn>>));
    const result = original.apply(this, args);
    after?.(result as ReturnType<Extract<T[K], Fn>>);
    return result;
  };
}

/** Count from now on what `device` is asked to do. Wrap it before the first model buffer is made. */
export function countDevice(device: GPUDevice): GpuCounter {
  const c = { ...ZERO };
  const MAP_READ = 0x0001; // GPUBufferUsage.MAP_READ
  wrap(device, 'createBuffer', (d) => {
    c.buffers++;
    c.bufferBytes += d.size;
  }, (buffer) => {
    if ((buffer.usage & MAP_READ) !== 0) wrap(buffer, 'mapAsync', () => void c.reads++);
  });
  wrap(device, 'createCommandEncoder', () => {}, (encoder) => {
    wrap(encoder, 'copyBufferToBuffer', () => void c.copies++);
    wrap(encoder, 'beginComputePass', () => {}, (pass) => {
      wrap(pass, 'dispatchWorkgroups', () => void c.dispatches++);
      wrap(pass, 'dispatchWorkgroupsIndirect', () => void c.dispatches++);
    });
  });
  wrap(device.queue, 'submit', () => void c.submits++);
  return { snapshot: () => ({ ...c }) };
}
