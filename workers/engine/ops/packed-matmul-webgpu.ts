// PackedMatMul on WebGPU (the kernel of ops/packed-matmul.ts): x [N, K] · Wᵀ for a packed W [R, K], one WGSL thread
// per output (n, r), reading W's packed words directly, so a decoded token reads 2 (16-bit), 1 (int8) or 0.5 (int4)
// bytes a weight instead of an unpacked float32 copy's 4 written and read again. The halves and quantized values are
// decoded by ops/dequantize-webgpu.ts's weightAt, as every packed kernel decodes them.
import * as tf from '../tf';
import type { Packing } from '../quant/format';
import { PACKED_MATMUL } from './packed-matmul';
import { weightAt } from './dequantize-webgpu';
import { flatProgram, programHelpers, type ProgramHelpers, type WebGpuBackendLike } from './webgpu-program';

function program(h: ProgramHelpers, packing: Packing, outputShape: number[], withScales: boolean) {
  return flatProgram(h, {
    outputShape,
    shaderKey: `webtune_packed_matmul_${packing.format}`,
    variableNames: ['x', 'words', ...(withScales ? ['scales'] : [])],
    uniforms: 'rows : i32, K : i32, wordsPerRow : i32, groups : i32, group : i32,',
    workgroupX: 64,
    prelude: weightAt(packing.format),
    body: `
          let n = index / uniforms.rows;
          let r = index - n * uniforms.rows;
          var acc = 0.0;
          for (var k = 0; k < uniforms.K; k++) {
            acc += x[n * uniforms.K + k] * weightAt(r, k);
          }
          setOutputAtIndex(index, acc);`,
  });
}

/** Register the WebGPU kernel once tfjs-backend-webgpu is loaded (ops/index.ts). */
export async function registerPackedMatMulWebgpu(): Promise<void> {
  if (!tf.getKernel(tf.Slice, 'webgpu') || tf.getKernel(PACKED_MATMUL, 'webgpu')) return;
  const h = await programHelpers();
  tf.registerKernel({
    kernelName: PACKED_MATMUL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const a = attrs as unknown as Packing;
      const x = inputs.x as tf.TensorInfo;
      const words = inputs.words as tf.TensorInfo;
      const scales = inputs.scales as tf.TensorInfo | undefined;
      const [N, K] = x.shape;
      const [R, W] = words.shape;
      const uniforms = [R, K, W, K / a.group, a.group].map((v) => ({ type: 'int32', data: [v] }));
      return (backend as unknown as WebGpuBackendLike).runWebGPUProgram(program(h, a, [N, R], !!scales), scales ? [x, words, scales] : [x, words], 'float32', uniforms);
    },
  });
}
