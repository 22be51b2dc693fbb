// Threads for the SIMD module's packed products, unpacking and transposes (ops/simd-kernels.wat).
// tfjs-backend-wasm's threaded build runs XNNPACK's own products on every core, but a kernel of webtune's own runs on
// the thread that calls it: decoding's packed products, most of a token's time, used one core of however many. Where
// the heap is a shared memory (the threaded build), helper threads instantiate the same module on that memory, and a
// product is split by W's rows: the calling thread runs the first part and each helper one more, all writing their own
// columns of the output.
//
// The threads meet in a small shared block of int32 (no messages once started). For each product the caller writes
// one part per helper into that helper's slot, opens the slots with the new generation's number, and bumps the
// generation; a helper, spinning briefly and then asleep in Atomics.wait on the generation, claims its slot (compare-
// and-exchange of the generation for TAKEN) and runs it. The caller runs the first part, then claims any slot no
// helper has claimed yet and runs that too, and waits only for parts a helper is running. So a helper that is slow to
// wake (its core busy: a machine running more than this) costs nothing but the split: never a wait for it to start.
// A helper's first act is to say it is ready; until all are, the caller runs every product alone.
import { compiledKernels, isShared, simdKernelsOn } from './simd-module';

/** The module's kernels a helper runs, by their index in a slot: the packed products (x·Wᵀ, and int8's dy·W), unpacking (Dequantize),
 * transposing (Dequantize's transposed layout, and WASM's Transpose: ops/wasm-transpose.ts), rounding the int8
 * product's x to int16 (ops/packed-matmul-simd.ts), and float32 products (WASM's BatchMatMul: ops/wasm-matmul.ts). */
export const POOLED = ['int8', 'int4', 'bf16', 'unpack_int8', 'unpack_int4', 'unpack_bf16', 'transpose4', 'round16', 'int8t', 'f32mm'] as const;
export type Pooled = (typeof POOLED)[number];
/** A pooled kernel's call: its arguments (byte addresses and counts) in the module's order, at most ARGS. */
type Call = (...args: number[]) => void;

/** A helper thread as its host makes it: it takes one message, its start. */
export interface HelperThread {
  postMessage(message: unknown): void;
}
/** Makes a helper thread that runs `source` (classic script; in Node, worker_threads with eval). */
export type SpawnHelper = (source: string) => HelperThread;

// The control block: [generation, parts remaining, parts failed, ready × helpers, then per helper a slot: its claim
// word (the generation it is open for, or TAKEN), the product's index in POOLED, its ARGS arguments].
const GEN = 0;
const REMAINING = 1;
const FAILED = 2;
const READY = 3;
const ARGS = 10;
const SLOT = 2 + ARGS;
const TAKEN = -1;

/**
 * How long a helper spins (Atomics.load) after its last part before it sleeps in Atomics.wait: long enough to catch
 * the next product of a decoded token without a wake-up (one comes every ~100 µs), short enough to leave the core
 * to XNNPACK's threads soon after decoding stops (a wake-up from Atomics.wait takes a system call on each side).
 */
const HELPER_SPIN_MS = 0.5;
/** How long the caller spins on the parts remaining before it sleeps on that count (where it may: not a page's main thread). */
const CALLER_SPIN_MS = 1;

/** The smallest product worth splitting (x rows × W's elements): below it, waking a helper costs more than it saves. */
export const POOL_MIN_WORK = 1 << 15;

// The helper's whole program. Plain JS, no imports: the same text runs as a browser's classic worker (from a Blob)
// and as Node's worker_threads eval.
const HELPER = `'use strict';
const start = ({ memory, module, control, index, slot }) => {
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const run = [${POOLED.map((p) => `k.${p}`).join(', ')}];
  const c = new Int32Array(control);
  let seen = Atomics.load(c, ${GEN});
  Atomics.store(c, ${READY} + index, 1);
  for (let last = performance.now(); ; last = performance.now()) {
    for (let i = 1; Atomics.load(c, ${GEN}) === seen; i++) {
      if ((i & 1023) === 0 && performance.now() - last > ${HELPER_SPIN_MS}) Atomics.wait(c, ${GEN}, seen);
    }
    seen = Atomics.load(c, ${GEN});
    if (Atomics.compareExchange(c, slot, seen, ${TAKEN}) !== seen) continue;
    try { run[c[slot + 1]](${Array.from({ length: ARGS }, (_, i) => `c[slot + ${i + 2}]`).join(', ')}); } catch { Atomics.add(c, ${FAILED}, 1); }
    if (Atomics.sub(c, ${REMAINING}, 1) === 1) Atomics.notify(c, ${REMAINING});
  }
};
if (typeof require === 'function') require('node:worker_threads').parentPort.once('message', start);
else self.onmessage = (e) => start(e.data);
`;

/** Classic workers from a Blob, where the host has Worker (a page's engine worker); Node's host sets its own. */
let spawnHelper: SpawnHelper | null =
  typeof Worker === 'function' && typeof Blob === 'function' && typeof URL?.createObjectURL === 'function'
    ? (source) => new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })))
    : null;

/** The threads products split across: tfjs-backend-wasm's (backend.ts sets it once the backend has started). */
let threads = 1;
export function setSimdThreads(n: number): void {
  threads = Math.max(1, n);
}

/** Threads a product may split across now (1: the calling thread alone, whatever pool exists). */
export function simdThreads(): number {
  return threads;
}

/** How this host makes a helper thread (null: no helpers; products then run on the calling thread). */
export function setHelperSpawner(spawn: SpawnHelper | null): void {
  spawnHelper = spawn;
}

export class SimdPool {
  readonly threads: number;
  readonly #control: Int32Array;
  readonly #own: Record<Pooled, Call>;
  #ready = false;
  #canWait: boolean | null = null;
  /** Products split so far, and of their parts those a helper ran (the rest ran on the calling thread). */
  readonly stats = { products: 0, helperParts: 0 };

  constructor(memory: WebAssembly.Memory, helpers: number, spawn: SpawnHelper, own: Record<Pooled, Call>) {
    this.threads = helpers + 1;
    this.#own = own;
    this.#control = new Int32Array(new SharedArrayBuffer(4 * (READY + helpers + helpers * SLOT)));
    const module = compiledKernels(true);
    for (let index = 0; index < helpers; index++) spawn(HELPER).postMessage({ memory, module, control: this.#control.buffer, index, slot: this.#slot(index) });
  }

  /** Whether every helper has started (until then, products run on the calling thread alone). */
  get ready(): boolean {
    if (!this.#ready) {
      const c = this.#control;
      let all = true;
      for (let i = 0; i < this.threads - 1; i++) all &&= Atomics.load(c, READY + i) === 1;
      this.#ready = all;
    }
    return this.#ready;
  }

  /**
   * Runs `parts` of one product at once: the first on this thread, the rest on helpers (at most one each) or, where a
   * helper has not taken its part by the time this thread is done with its own, here too. Returns when all are done;
   * throws if a helper's part trapped.
   */
  run(product: Pooled, parts: number[][]): void {
    const c = this.#control;
    const helpers = Math.min(parts.length - 1, this.threads - 1);
    if (parts.length > this.threads) throw new Error(`SimdPool: ${parts.length} parts for ${this.threads} threads`);
    const gen = (Atomics.load(c, GEN) % 0x3fffffff) + 1;
    for (let h = 0; h < helpers; h++) {
      const slot = this.#slot(h);
      c[slot + 1] = POOLED.indexOf(product);
      for (let i = 0; i < ARGS; i++) c[slot + 2 + i] = parts[h + 1][i] ?? 0;
      Atomics.store(c, slot, gen); // open: the args above are visible to whoever claims it
    }
    Atomics.store(c, FAILED, 0);
    Atomics.store(c, REMAINING, helpers);
    Atomics.store(c, GEN, gen);
    Atomics.notify(c, GEN);
    this.#own[product](...parts[0]);
    this.stats.products++;
    for (let h = 0; h < helpers; h++) {
      if (Atomics.compareExchange(c, this.#slot(h), gen, TAKEN) !== gen) {
        this.stats.helperParts++; // a helper has it
        continue;
      }
      this.#own[product](...parts[h + 1]);
      Atomics.sub(c, REMAINING, 1);
    }
    for (let i = 1, since = 0; ; i++) {
      const remaining = Atomics.load(c, REMAINING);
      if (remaining === 0) break;
      if ((i & 1023) !== 0) continue;
      if (since === 0) since = performance.now();
      else if (performance.now() - since > CALLER_SPIN_MS && this.#mayWait()) Atomics.wait(c, REMAINING, remaining, 10);
    }
    if (Atomics.load(c, FAILED) > 0) throw new Error('a packed product failed on a WASM helper thread');
  }

  /** Where helper `h`'s call is written. */
  #slot(h: number): number {
    return READY + this.threads - 1 + h * SLOT;
  }

  /** Atomics.wait throws on a page's main thread; elsewhere (workers, Node) it may sleep. */
  #mayWait(): boolean {
    if (this.#canWait === null) {
      try {
        Atomics.wait(this.#control, GEN, Atomics.load(this.#control, GEN) + 1, 0);
        this.#canWait = true;
      } catch {
        this.#canWait = false;
      }
    }
    return this.#canWait;
  }
}

const pools = new WeakMap<WebAssembly.Memory, SimdPool | null>();

/**
 * The pool of helper threads on `memory`, one per WASM thread beyond the calling one (setSimdThreads), or null: a plain
 * (unshared) heap, one thread, no SIMD module, or a host that makes no threads. Made at the first call.
 */
export function simdPoolOn(memory: WebAssembly.Memory): SimdPool | null {
  if (pools.has(memory)) return pools.get(memory)!;
  let pool: SimdPool | null = null;
  const helpers = isShared(memory) ? threads - 1 : 0;
  const own = simdKernelsOn(memory);
  if (helpers > 0 && own && spawnHelper) {
    try {
      pool = new SimdPool(memory, helpers, spawnHelper, own);
    } catch {
      pool = null; // a host that refuses the threads (a page's policy on workers): products run on this thread
    }
  }
  pools.set(memory, pool);
  return pool;
}

/** Row ranges [r0, r1) splitting R rows into `parts` near-equal parts (none empty), each a multiple of `unit` rows
 * long but the last (R itself a multiple of it, then all are). */
export function splitRows(R: number, parts: number, unit = 1): Array<[number, number]> {
  const units = Math.ceil(R / unit);
  const n = Math.max(1, Math.min(parts, units));
  return Array.from({ length: n }, (_, i) => [Math.floor((units * i) / n) * unit, Math.min(R, Math.floor((units * (i + 1)) / n) * unit)]);
}

/**
 * `kernel` of the module over R rows, split by rows across the pool's threads where there is one and `work` (the call's
 * elements) is worth it; `part(r0, r1)` gives a part's arguments. Parts are multiples of `unit` rows.
 */
export function runSplit(memory: WebAssembly.Memory, kernels: Record<Pooled, Call>, kernel: Pooled, R: number, work: number, part: (r0: number, r1: number) => number[], unit = 1): void {
  const pool = simdPoolOn(memory);
  const parts = Math.min(pool?.threads ?? 1, simdThreads());
  if (!pool?.ready || parts < 2 || work < POOL_MIN_WORK) return kernels[kernel](...part(0, R));
  pool.run(kernel, splitRows(R, parts, unit).map(([r0, r1]) => part(r0, r1)));
}
