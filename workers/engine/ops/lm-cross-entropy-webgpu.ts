// The LM head's softmax cross-entropy on WebGPU (ops/lm-cross-entropy.ts), two programs:
// - the row statistics, one workgroup of 256 threads per row: each thread scans its strided share of the row for the
//   largest logit (its first index), the workgroup reduces them, then the sum of exp(l − max) likewise; thread 0
//   writes logsumexp, the target's NLL and the hit;
// - dz, one thread per value: softmax(l) − onehot, times l′ under a cap, from z and the row's logsumexp.
// Neither writes anything [n, V]-sized but dz; tfjs's ops write the capped logits, the softmax, a max, the target's
// gather and their gradient's pieces.
import * as tf from '../tf';
import { flatProgram, programHelpers, workgroupPerRow, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';
import { LM_CROSS_ENTROPY, type LmCrossEntropyAttrs } from './lm-cross-entropy';

const THREADS = 256;

// WGSL: the capped logit `l` of `zv` and its derivative `dl`; tanh from exp(−2|u|), finite for every u.
const LOGIT = (zv: string) => `
          var l = ${zv};
          var dl = 1.0;
          if (uniforms.cap > 0.0) {
            let u = l / uniforms.cap;
            let e = exp(-2.0 * abs(u));
            let th = sign(u) * (1.0 - e) / (1.0 + e);
            l = uniforms.cap * th;
            dl = 1.0 - th * th;
          }`;

function statsProgram(h: ProgramHelpers, n: number) {
  const frame = workgroupPerRow(n, 2);
  return {
    outputShape: [n, 3],
    shaderKey: 'webtune_lm_ce_stats',
    dispatchLayout: frame.dispatchLayout,
    dispatch: frame.dispatch,
    variableNames: ['z', 'targets'],
    uniforms: 'rows : i32, V : i32, cap : f32,',
    workgroupSize: [THREADS, 1, 1] as [number, number, number],
    getUserCode: () => `
      var<workgroup> best : array<f32, ${THREADS}>;
      var<workgroup> at : array<i32, ${THREADS}>;
      ${h.getMainHeaderString()} {
        ${frame.rowHeader}
        let V = uniforms.V;
        let base = row * V;
        var m = -3.4e38;
        var mi = V;
        for (var c = lane; c < V; c += ${THREADS}) {
          if (valid) {${LOGIT('z[base + c]')}
            if (l > m) { m = l; mi = c; }
          }
        }
        best[lane] = m;
        at[lane] = mi;
        workgroupBarrier();
        for (var stride = ${THREADS / 2}; stride > 0; stride >>= 1) {
          if (lane < stride) {
            let om = best[lane + stride];
            let oi = at[lane + stride];
            if (om > best[lane] || (om == best[lane] && oi < at[lane])) { best[lane] = om; at[lane] = oi; }
          }
          workgroupBarrier();
        }
        let rowMax = best[0];
        let arg = at[0];
        workgroupBarrier();
        var s = 0.0;
        for (var c = lane; c < V; c += ${THREADS}) {
          if (valid) {${LOGIT('z[base + c]')}
            s += exp(l - rowMax);
          }
        }
        best[lane] = s;
        workgroupBarrier();
        for (var stride = ${THREADS / 2}; stride > 0; stride >>= 1) {
          if (lane < stride) { best[lane] += best[lane + stride]; }
          workgroupBarrier();
        }
        if (valid && lane == 0) {
          let lse = rowMax + log(best[0]);
          let t = targets[row];${LOGIT('z[base + t]')}
          setOutputAtIndex(row * 3, lse);
          setOutputAtIndex(row * 3 + 1, lse - l);
          setOutputAtIndex(row * 3 + 2, select(0.0, 1.0, arg == t));
        }
      }`,
  };
}

function gradProgram(h: ProgramHelpers, n: number, V: number) {
  return flatProgram(h, {
    outputShape: [n, V],
    shaderKey: 'webtune_lm_ce_dz',
    variableNames: ['z', 'targets', 'stats'],
    uniforms: 'V : i32, cap : f32,',
    workgroupX: 256,
    prelude: '',
    body: `
          let row = index / uniforms.V;${LOGIT('z[index]')}
          let p = exp(l - stats[row * 3]);
          let hot = select(0.0, 1.0, index - row * uniforms.V == targets[row]);
          setOutputAtIndex(index, (p - hot) * dl);`,
  });
}

export async function registerLmCrossEntropyWebgpu(): Promise<void> {
  if (!tf.getKernel(tf.Slice, 'webgpu') || tf.getKernel(LM_CROSS_ENTROPY, 'webgpu')) return;
  const helpers = await programHelpers();
  tf.registerKernel({
    kernelName: LM_CROSS_ENTROPY,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { cap, grad } = attrs as unknown as LmCrossEntropyAttrs;
      const gpu = backend as unknown as WebGpuBackendLike;
      const [z, targets] = [inputs.z, inputs.targets] as tf.TensorInfo[];
      const [n, V] = z.shape;
      const stats = gpu.runWebGPUProgram(statsProgram(helpers, n), [z, targets], 'float32', [
        { type: 'int32', data: [n] },
        { type: 'int32', data: [V] },
        { type: 'float32', data: [cap] },
      ]);
      if (!grad) return [stats];
      const dz = gpu.runWebGPUProgram(gradProgram(helpers, n, V), [z, targets, stats], 'float32', [
        { type: 'int32', data: [V] },
        { type: 'float32', data: [cap] },
      ]);
      return [stats, dz];
    },
  });
}
