// A linear layer for a few rows (decoding's one token) with what surrounds it folded in: the pre-norm before it
// (RMSNorm of x, recomputed by every workgroup: C reads per row), its bias and the residual after it, or, for
// the gated MLP, two weight matrices at once and act(x·W₁)·(x·W₂). One kernel where one is registered (WebGPU:
// ops/row-linear-webgpu.ts), where tfjs takes a dispatch for the norm, one per product and one per addition.
// Everywhere else (and on WebGPU for many rows, a packed weight or an adapted module) the model runs the ops in
// `rowLinearOps`. Its gradient, for x and the residual (weights, norm and bias are frozen), is in tfjs's ops.
import * as tf from '../tf';
import { gatedActOps, type Activation } from './gated-act';
import { rmsNormOps, RMS_NORM_GRAD } from './rms-norm';
import { hasKernel } from './webgpu-program';
import { withOwnTape } from './own-tape';

export const ROW_LINEAR = 'WebtuneRowLinear';

/** Rows the kernel takes at most: one accumulator per row per thread. */
export const ROW_LINEAR_MAX_ROWS = 8;

export interface RowLinearOptions {
  norm?: { w: tf.Tensor; eps: number; offset: number }; // RMSNorm of x first, by (w + offset)
  bias?: tf.Tensor; // [O]
  residual?: tf.Tensor; // [N, O], added last
  gated?: { w2: tf.Tensor; act: Activation }; // act(x·W) · (x·W₂) instead of x·W (no bias or residual then)
}

export interface RowLinearAttrs {
  eps: number;
  offset: number;
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
  if (o.residual) y = tf.add(y, o.residual);
  return y;
}

/** The kernel (callers check hasRowLinear and the row count first), as an op whose gradient reaches x and the
 * residual (the weights, the norm's and the bias are frozen). */
export function rowLinear(x: tf.Tensor2D, w: tf.Tensor2D, o: RowLinearOptions): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = { x, w };
  if (o.norm) inputs.normW = o.norm.w;
  if (o.bias) inputs.bias = o.bias;
  if (o.residual) inputs.residual = o.residual;
  if (o.gated) inputs.w2 = o.gated.w2;
  const attrs: RowLinearAttrs = { eps: o.norm?.eps ?? 0, offset: o.norm?.offset ?? 0, act: o.gated?.act ?? '' };
  const kernel = () => tf.engine().runKernel(ROW_LINEAR, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    (args[args.length - 1] as tf.GradSaveFunc)([args[0] as tf.Tensor]); // x, for the backward pass
    return {
      value: kernel(),
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => {
        const g = dy as tf.Tensor2D;
        const dx = tf.tidy(() => {
          const xn = o.norm ? rmsNormOps(xs, o.norm.w, o.norm.eps, o.norm.offset) : xs;
          let dxn: tf.Tensor;
          if (o.gated) {
            const w2 = o.gated.w2 as tf.Tensor2D;
            const act = o.gated.act;
            // Through act(gate)·up, gate = xn·W and up = xn·W₂: autograd of the ops (a decode-sized product).
            const [dGate, dUp] = withOwnTape(() => tf.grads((ga: tf.Tensor, up: tf.Tensor) => tf.sum(tf.mul(gatedActOps(ga, up, act), g)))([tf.matMul(xn, w), tf.matMul(xn, w2)]));
            dxn = tf.add(tf.matMul(dGate, w, false, true), tf.matMul(dUp, w2, false, true));
          } else dxn = tf.matMul(g, w, false, true);
          if (!o.norm) return dxn;
          return tf.engine().runKernel(RMS_NORM_GRAD, { x: xs, w: o.norm.w, dy: dxn }, { eps: o.norm.eps, offset: o.norm.offset } as unknown as tf.NamedAttrMap) as tf.Tensor;
        });
        return args.length > 2 ? [dx, g] : [dx]; // x, and the residual when there is one
      },
    };
  });
  return (o.residual ? op(x, o.residual) : op(x)) as tf.Tensor2D;
}
