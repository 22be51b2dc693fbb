// A linear layer for a few rows (decoding's one token) with what surrounds it folded in: the pre-norm before it
// (RMSNorm of x, recomputed by every workgroup: C reads per row), its bias, its adapter's term and the residual, or, for
// the gated MLP, two weight matrices at once and act(x·W₁)·(x·W₂). One kernel where one is registered (WebGPU:
// ops/row-linear-webgpu.ts), where tfjs takes a dispatch for the norm, one per product and one per addition.
// Everywhere else (and on WebGPU for many rows, a packed weight, an adapter with dropout) the model runs the ops in
// `rowLinearOps`. Its gradient, for x, the residual and the adapter (weights, norm and bias are frozen), is in tfjs's ops.
import * as tf from '../tf';
import { gatedActOps, type Activation } from './gated-act';
import { rmsNormOps, RMS_NORM_GRAD } from './rms-norm';
import { hasKernel } from './webgpu-program';
import { withOwnTape } from './own-tape';

export const ROW_LINEAR = 'WebtuneRowLinear';

/** Rows the kernel takes at most (one accumulator per row per thread; its shared memory grows with them), and
 * the largest adapter rank it folds in. */
export const ROW_LINEAR_MAX_ROWS = 4;
export const ROW_LINEAR_MAX_RANK = 128;

export interface RowLinearOptions {
  norm?: { w: tf.Tensor; eps: number; offset: number }; // RMSNorm of x first, by (w + offset)
  bias?: tf.Tensor; // [O]
  residual?: tf.Tensor; // [N, O], added last
  lora?: { A: tf.Tensor; B: tf.Tensor; scale: number }; // + scale · (xn·Aᵀ)·Bᵀ, A [r, C] and B [O, r] as PEFT (not with gated)
  gated?: { w2: tf.Tensor; act: Activation }; // act(x·W) · (x·W₂) instead of x·W (no bias or residual then)
}

export interface RowLinearAttrs {
  eps: number;
  offset: number;
  scale: number; // the adapter's, when it has one
  act: Activation | ''; // '' = not gated
}

export function hasRowLinear(backend = tf.getBackend()): boolean {
  return hasKernel(ROW_LINEAR, backend);
}

/** x [N, C] · W [C, O] with `o` folded in → [N, O]; in tfjs's ops. */
export function rowLinearOps(x: tf.Tensor2D, w: tf.Tensor2D, o: RowLinearOptions): tf.Tensor2D {
  const xn = o.norm ? rmsNormOps(x, o.norm.w, o.norm.eps, o.norm.offset) : x;
  if (o.gated) return gatedActOps(tf.matMul(xn, w), tf.matMul(xn, o.gated.w2 as tf.Tensor2D), o.gated.act);
  let y: tf.Tensor2D = tf.matMul(xn, w);
  if (o.bias) y = tf.add(y, o.bias);
  if (o.lora) y = tf.add(y, tf.mul(tf.matMul(tf.matMul(xn, o.lora.A, false, true), o.lora.B, false, true), o.lora.scale));
  if (o.residual) y = tf.add(y, o.residual);
  return y;
}

/** The kernel (callers check hasRowLinear and the row count first), as an op whose gradient reaches x, the
 * residual and the adapter's A and B (the weights, the norm's and the bias are frozen). */
export function rowLinear(x: tf.Tensor2D, w: tf.Tensor2D, o: RowLinearOptions): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = { x, w };
  if (o.norm) inputs.normW = o.norm.w;
  if (o.bias) inputs.bias = o.bias;
  if (o.residual) inputs.residual = o.residual;
  if (o.gated) inputs.w2 = o.gated.w2;
  if (o.lora) [inputs.loraA, inputs.loraB] = [o.lora.A, o.lora.B];
  if (o.lora && o.gated) throw new Error('row-linear: an adapter on a gated pair is not fused; call it per product');
  const attrs: RowLinearAttrs = { eps: o.norm?.eps ?? 0, offset: o.norm?.offset ?? 0, scale: o.lora?.scale ?? 0, act: o.gated?.act ?? '' };
  const kernel = () => tf.engine().runKernel(ROW_LINEAR, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    (args[args.length - 1] as tf.GradSaveFunc)([args[0] as tf.Tensor]); // x, for the backward pass
    return {
      value: kernel(),
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => {
        const g = dy as tf.Tensor2D;
        const xn = o.norm ? rmsNormOps(xs, o.norm.w, o.norm.eps, o.norm.offset) : xs; // freed with the backward pass
        const dx = tf.tidy(() => {
          let dxn: tf.Tensor;
          if (o.gated) {
            const w2 = o.gated.w2 as tf.Tensor2D;
            const act = o.gated.act;
            // Through act(gate)·up, gate = xn·W and up = xn·W₂: autograd of the ops (a decode-sized product).
            const [dGate, dUp] = withOwnTape(() => tf.grads((ga: tf.Tensor, up: tf.Tensor) => tf.sum(tf.mul(gatedActOps(ga, up, act), g)))([tf.matMul(xn, w), tf.matMul(xn, w2)]));
            dxn = tf.add(tf.matMul(dGate, w, false, true), tf.matMul(dUp, w2, false, true));
          } else dxn = tf.matMul(g, w, false, true);
          if (o.lora) dxn = tf.add(dxn, tf.mul(tf.matMul(tf.matMul(g, o.lora.B), o.lora.A), o.lora.scale)); // s·(g·B)·A
          if (!o.norm) return dxn;
          return tf.engine().runKernel(RMS_NORM_GRAD, { x: xs, w: o.norm.w, dy: dxn }, { eps: o.norm.eps, offset: o.norm.offset } as unknown as tf.NamedAttrMap) as tf.Tensor;
        });
        const grads: tf.Tensor[] = [dx];
        if (o.residual) grads.push(g);
        if (o.lora) {
          const { A, B, scale } = o.lora;
          grads.push(tf.tidy(() => tf.mul(tf.matMul(tf.matMul(g, B), xn, true, false), scale))); // dA = s·(g·B)ᵀ·xn [r, C]
          grads.push(tf.tidy(() => tf.mul(tf.matMul(g, tf.matMul(xn, A, false, true), true, false), scale))); // dB = s·gᵀ·(xn·Aᵀ) [O, r]
        }
        return grads; // in the op's input order: x, the residual, A, B
      },
    };
  });
  const ins = [x, ...(o.residual ? [o.residual] : []), ...(o.lora ? [o.lora.A, o.lora.B] : [])];
  return op(...ins) as tf.Tensor2D;
}
