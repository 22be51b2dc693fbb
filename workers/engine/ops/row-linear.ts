// A linear layer for a few rows (decoding's one token) with what surrounds it folded in: the pre-norm before it
// (RMSNorm of x, recomputed by every workgroup: C reads per row), its bias, its adapter's term and the residual, or, for
// the gated MLP, two weight matrices at once and act(x·W₁)·(x·W₂), each with its adapter, or its up product alone
// given the gate from a kernel of its own, act(gate)·(x·W₂) (fewer buffers bound: a tuned MLP with packed weights
// takes two kernels so, not three). One kernel where one is registered (WebGPU:
// ops/row-linear-webgpu.ts), where tfjs takes a dispatch for the norm, one per product and one per addition.
// W is float32 [C, O], or packed (16 bits, int8, int4: quant/packed-matrix.ts) in the checkpoint's [O, C], read in the
// kernel as it stands (the gated pair: both packed alike). Everywhere else (and on WebGPU for many rows, an adapter with
// dropout) the model runs the ops in `rowLinearOps`. Its gradient, for x, the residual and the adapter (weights, norm
// and bias are frozen), is in tfjs's ops.
import * as tf from '../tf';
import { gatedActOps, type Activation } from './gated-act';
import { rmsNormOps, RMS_NORM_GRAD } from './rms-norm';
import { hasKernel } from './webgpu-program';
import { recording, withOwnTape } from './own-tape';
import { PackedMatrix } from '../quant/packed-matrix';
import type { PackFormat } from '../quant/format';

export const ROW_LINEAR = 'WebtuneRowLinear';

/** Rows the kernel takes at most (one accumulator per row per thread; its shared memory grows with them), and
 * the largest adapter rank it folds in. */
export const ROW_LINEAR_MAX_ROWS = 4;
export const ROW_LINEAR_MAX_RANK = 128;

/** An adapter's term on a product, + scale · (xn·Aᵀ)·Bᵀ, with A [r, C] and B [O, r] as PEFT. */
export interface RowAdapter {
  A: tf.Tensor;
  B: tf.Tensor;
  scale: number;
}

/** A frozen weight as the kernel reads it: float32 [C, O], or packed [O, C]. */
export type RowWeight = tf.Tensor2D | PackedMatrix;

export interface RowLinearOptions {
  norm?: { w: tf.Tensor; eps: number; offset: number }; // RMSNorm of x first, by (w + offset)
  bias?: tf.Tensor; // [O]
  residual?: tf.Tensor; // [N, O], added last
  lora?: RowAdapter; // on W (the gate, when gated)
  gated?: { w2: RowWeight; act: Activation; lora?: RowAdapter }; // act(x·W) · (x·W₂) instead of x·W (no bias or residual then); lora: on W₂; W₂ held as W is
  gate?: { value: tf.Tensor; act: Activation }; // act(gate) · (x·W) instead of x·W: the MLP's up product, its gate [N, O] from a kernel of its own (no bias or residual then)
}

export interface RowLinearAttrs {
  eps: number;
  offset: number;
  scale: number; // W's adapter's, when it has one
  scale2: number; // W₂'s adapter's, when it has one
  act: Activation | ''; // '' = neither gated nor given a gate
  format: PackFormat | ''; // W's (and W₂'s) packing; '' = float32
  group: number; // its group (int8, int4)
}

export function hasRowLinear(backend = tf.getBackend()): boolean {
  return hasKernel(ROW_LINEAR, backend);
}

/** xn · W, W float32 [C, O] or packed [O, C]. */
const times = (xn: tf.Tensor2D, w: RowWeight): tf.Tensor2D => (w instanceof PackedMatrix ? w.forward(xn) : tf.matMul(xn, w));

/** g · Wᵀ, back through `times`. */
const timesT = (g: tf.Tensor2D, w: RowWeight): tf.Tensor2D => (w instanceof PackedMatrix ? w.backward(g) : tf.matMul(g, w, false, true));

/** xn · W, plus the adapter's term. */
function adapted(xn: tf.Tensor2D, w: RowWeight, lora: RowAdapter | undefined): tf.Tensor2D {
  const y = times(xn, w);
  return lora ? tf.add<tf.Tensor2D>(y, tf.mul(tf.matMul(tf.matMul(xn, lora.A as tf.Tensor2D, false, true), lora.B as tf.Tensor2D, false, true), lora.scale)) : y;
}

/** x [N, C] · W [C, O] with `o` folded in → [N, O]; in tfjs's ops. */
export function rowLinearOps(x: tf.Tensor2D, w: RowWeight, o: RowLinearOptions): tf.Tensor2D {
  const xn = o.norm ? rmsNormOps(x, o.norm.w, o.norm.eps, o.norm.offset) : x;
  if (o.gated) return gatedActOps(adapted(xn, w, o.lora), adapted(xn, o.gated.w2, o.gated.lora), o.gated.act);
  if (o.gate) return gatedActOps(o.gate.value as tf.Tensor2D, adapted(xn, w, o.lora), o.gate.act);
  let y = adapted(xn, w, o.lora);
  if (o.bias) y = tf.add(y, o.bias);
  if (o.residual) y = tf.add(y, o.residual);
  return y;
}

/** Back through xn · W + s·(xn·Aᵀ)·Bᵀ from its output's gradient g: g·Wᵀ + s·(g·B)·A, for xn. */
function adaptedBack(g: tf.Tensor2D, w: RowWeight, lora: RowAdapter | undefined): tf.Tensor2D {
  const d = timesT(g, w);
  return lora ? tf.add<tf.Tensor2D>(d, tf.mul(tf.matMul(tf.matMul(g, lora.B as tf.Tensor2D), lora.A as tf.Tensor2D), lora.scale)) : d;
}

/** The adapter's own gradients from its product's output gradient g: dA = s·(g·B)ᵀ·xn [r, C], dB = s·gᵀ·(xn·Aᵀ) [O, r]. */
function adapterGrads(g: tf.Tensor2D, xn: tf.Tensor2D, { A, B, scale }: RowAdapter): tf.Tensor[] {
  return [tf.tidy(() => tf.mul(tf.matMul(tf.matMul(g, B), xn, true, false), scale)), tf.tidy(() => tf.mul(tf.matMul(g, tf.matMul(xn, A, false, true), true, false), scale))];
}

/** The kernel (callers check hasRowLinear and the row count first), as an op whose gradient reaches x, the
 * residual and the adapter's A and B (the weights, the norm's and the bias are frozen). */
export function rowLinear(x: tf.Tensor2D, w: RowWeight, o: RowLinearOptions): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = { x };
  const packing = w instanceof PackedMatrix ? w.packing : null;
  const unlike = () => new Error('row-linear: the gated pair must hold both weights alike (float32, or the same packing)');
  const bind = (m: RowWeight, suffix: string) => {
    if (!(m instanceof PackedMatrix)) {
      if (packing) throw unlike();
      inputs[`w${suffix}`] = m;
      return;
    }
    if (m.packing.format !== packing?.format || m.packing.group !== packing.group) throw unlike();
    inputs[`words${suffix}`] = m.words;
    if (m.scales) inputs[`scales${suffix}`] = m.scales;
  };
  bind(w, '');
  if (o.norm) inputs.normW = o.norm.w;
  if (o.bias) inputs.bias = o.bias;
  if (o.residual) inputs.residual = o.residual;
  if (o.gate) inputs.gate = o.gate.value;
  if (o.gated) bind(o.gated.w2, '2');
  if (o.lora) [inputs.loraA, inputs.loraB] = [o.lora.A, o.lora.B];
  const lora2 = o.gated?.lora;
  if (lora2) [inputs.lora2A, inputs.lora2B] = [lora2.A, lora2.B];
  const attrs: RowLinearAttrs = { eps: o.norm?.eps ?? 0, offset: o.norm?.offset ?? 0, scale: o.lora?.scale ?? 0, scale2: lora2?.scale ?? 0, act: o.gated?.act ?? o.gate?.act ?? '', format: packing?.format ?? '', group: packing?.group ?? 0 };
  const kernel = () => tf.engine().runKernel(ROW_LINEAR, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
  if (!recording()) return kernel(); // no gradient asked (decoding): the kernel alone, without customGrad's scope
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    (args[args.length - 1] as tf.GradSaveFunc)([args[0] as tf.Tensor]); // x, for the backward pass
    return {
      value: kernel(),
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => {
        const g = dy as tf.Tensor2D;
        const xn = (o.norm ? rmsNormOps(xs, o.norm.w, o.norm.eps, o.norm.offset) : xs) as tf.Tensor2D; // freed with the backward pass
        // Each product's output gradient: g itself, or, through act(gate)·up with gate = xn·W (+ its adapter) and
        // up = xn·W₂ (+ its adapter), autograd of the ops (a decode-sized product); with a gate given, up = xn·W
        // and the gate's gradient is the op's too.
        const { gated, gate } = o;
        const through = (act: Activation, ga: tf.Tensor, up: tf.Tensor) =>
          withOwnTape(() => tf.grads((a: tf.Tensor, u: tf.Tensor) => tf.sum(tf.mul(gatedActOps(a, u, act), g)))([ga, up])) as [tf.Tensor2D, tf.Tensor2D];
        let [gW, gW2, dGate]: [tf.Tensor2D, tf.Tensor2D | null, tf.Tensor2D | null] = [g, null, null];
        if (gated) [gW, gW2] = through(gated.act, adapted(xn, w, o.lora), adapted(xn, gated.w2, gated.lora));
        else if (gate) [dGate, gW] = through(gate.act, gate.value, adapted(xn, w, o.lora));
        const dx = tf.tidy(() => {
          let dxn = adaptedBack(gW, w, o.lora);
          if (gated && gW2) dxn = tf.add(dxn, adaptedBack(gW2, gated.w2, gated.lora));
          if (!o.norm) return dxn;
          return tf.engine().runKernel(RMS_NORM_GRAD, { x: xs, w: o.norm.w, dy: dxn }, { eps: o.norm.eps, offset: o.norm.offset } as unknown as tf.NamedAttrMap) as tf.Tensor;
        });
        const grads: tf.Tensor[] = [dx];
        if (o.residual) grads.push(g);
        if (dGate) grads.push(dGate);
        if (o.lora) grads.push(...adapterGrads(gW, xn, o.lora));
        if (gated?.lora && gW2) grads.push(...adapterGrads(gW2, xn, gated.lora));
        return grads; // in the op's input order: x, the residual, the gate, A, B, A₂, B₂
      },
    };
  });
  const ins = [x, ...(o.residual ? [o.residual] : []), ...(o.gate ? [o.gate.value] : []), ...(o.lora ? [o.lora.A, o.lora.B] : []), ...(lora2 ? [lora2.A, lora2.B] : [])];
  return op(...ins) as tf.Tensor2D;
}
