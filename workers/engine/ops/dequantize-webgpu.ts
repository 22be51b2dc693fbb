// Dequantize on WebGPU (the kernel of ops/dequantize.ts): one WGSL thread per output float. Packed words are read
// as i32 (tfjs's int32 buffers); bf16 is a 16-bit shift, f16 is decoded with integer operations (exact, subnormals
// included: WGSL's unpack2x16float may flush them), int8/int4 are sign- or offset-extracted and scaled. A GPU may
// flush float32 subnormals to zero when storing (bf16 patterns below 2^-126, never met in trained weights).
import * as tf from '../tf';
import { PER_WORD, type Packing } from '../quant/format';
import { DEQUANTIZE } from './dequantize';
import { flatProgram, programHelpers, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';

/** WGSL: the value `v` of element k (word `w`, position `sub` in it) of row r, per format. */
const DECODE: Record<Packing['format'], string> = {
  bf16: 'v = bitcast<f32>(((u32(w) >> (16u * sub)) & 0xffffu) << 16u);',
  f16: 'v = bitcast<f32>(f16Bits((u32(w) >> (16u * sub)) & 0xffffu));',
  int8: 'v = f32(extractBits(w, 8u * sub, 8u)) * scales[r * uniforms.groups + k / uniforms.group];',
  int4: 'v = f32(i32(extractBits(u32(w), 4u * sub, 4u)) - 8) * scales[r * uniforms.groups + k / uniforms.group];',
};

/** WGSL: `weightAt(r, k)`, element k of row r of the packed matrix bound as `words` (and `scales`), with the
 * uniforms wordsPerRow, groups and group; the f16 decoder with it when the format needs it. A second matrix of the
 * same packing and shape (the gated MLP's up beside its gate) takes `suffix`: `weightAt2` reads `words2` and `scales2`,
 * with the first one's f16 decoder. */
export function weightAt(format: Packing['format'], suffix = ''): string {
  return `${format === 'f16' && !suffix ? F16_BITS : ''}
      fn weightAt${suffix}(r : i32, k : i32) -> f32 {
        let w = words${suffix}[r * uniforms.wordsPerRow + k / ${PER_WORD[format]}];
        let sub = u32(k % ${PER_WORD[format]});
        var v = 0.0;
        ${DECODE[format].replace('scales[', `scales${suffix}[`)}
        return v;
      }`;
}

const F16_BITS = `
fn f16Bits(h : u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return sign | 0x7f800000u | (m << 13u); }
  if (e == 0u) {
    if (m == 0u) { return sign; }
    let shift = countLeadingZeros(m) - 21u; // brings the top bit of m to bit 10
    return sign | ((113u - shift) << 23u) | (((m << shift) & 0x3ffu) << 13u);
  }
  return sign | ((e + 112u) << 23u) | (m << 13u);
}`;

function program(h: ProgramHelpers, packing: Packing, outputShape: number[], withScales: boolean, withRows: boolean) {
  return flatProgram(h, {
    outputShape,
    shaderKey: `webtune_dequantize_${packing.format}${withRows ? '_rows' : ''}`,
    variableNames: ['words', ...(withScales ? ['scales'] : []), ...(withRows ? ['rows'] : [])],
    uniforms: 'cols : i32, wordsPerRow : i32, groups : i32, group : i32, transposed : i32,',
    workgroupX: 128,
    prelude: weightAt(packing.format),
    body: `
          let i = index / uniforms.cols;
          let j = index - i * uniforms.cols;
          var r = i;
          var k = j;
          if (uniforms.transposed == 1) { r = j; k = i; }
          ${withRows ? 'r = rows[i];' : ''}
          setOutputAtIndex(index, weightAt(r, k));`,
  });
}

/** Register the WebGPU kernel once tfjs-backend-webgpu is loaded (backend.ts calls registerOps again then). */
export async function registerDequantizeWebgpu(): Promise<void> {
  if (!tf.getKernel(tf.Slice, 'webgpu') || tf.getKernel(DEQUANTIZE, 'webgpu')) return;
  const helpers = await programHelpers();
  tf.registerKernel({
    kernelName: DEQUANTIZE,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const a = attrs as unknown as Packing & { transpose: boolean };
      const words = inputs.words as tf.TensorInfo;
      const scales = inputs.scales as tf.TensorInfo | undefined;
      const rows = inputs.rows as tf.TensorInfo | undefined;
      const [R, W] = words.shape;
      const K = W * PER_WORD[a.format];
      const shape = rows ? [rows.shape[0], K] : a.transpose ? [K, R] : [R, K];
      const groups = K / a.group;
      const uniforms = [shape[1], W, groups, a.group, a.transpose && !rows ? 1 : 0].map((v) => ({ type: 'int32', data: [v] }));
      const ins = [words, ...(scales ? [scales] : []), ...(rows ? [rows] : [])];
      return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(program(helpers, a, shape, !!scales, !!rows), ins, 'float32', uniforms);
    },
  });
}
