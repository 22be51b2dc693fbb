// The high-water mark of tensor bytes over a stretch of work (a CLI command, a benchmark step), without tf.profile:
// profiling records every kernel (and on WebGPU times each one), which a whole training run cannot afford. tfjs
// keeps its running byte count in one field of its engine state; that field becomes an accessor (once) which
// raises the peak of every tracker running. What it counts is tfjs's own: every tensor's bytes on every backend,
// not the allocator's overhead nor XNNPACK's packed copies inside the WASM heap.
import * as tf from './tf';

interface EngineStateLike {
  numBytes: number;
}

export interface PeakTracker {
  /** The most tensor bytes held at once since the tracker started. */
  readonly peak: number;
  /** Stop raising the peak (it keeps the one it saw). */
  stop(): void;
}

const running = new Set<{ peak: number }>();
let watched: EngineStateLike | null = null;

function watch(): number {
  const state = (tf.engine() as unknown as { state: EngineStateLike }).state;
  if (watched !== state) {
    let value = state.numBytes;
    Object.defineProperty(state, 'numBytes', {
      configurable: true,
      enumerable: true,
      get: () => value,
      set: (v: number) => {
        value = v;
        for (const t of running) if (v > t.peak) t.peak = v;
      },
    });
    watched = state;
  }
  return state.numBytes;
}

export function trackPeakBytes(): PeakTracker {
  const t = { peak: watch() };
  running.add(t);
  return {
    get peak() {
      return t.peak;
    },
    stop: () => running.delete(t),
  };
}
