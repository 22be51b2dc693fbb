// Σ of same-shaped tensors as a tree of two-input adds. tfjs's AddN kernel on WebGPU binds every input as
// its own storage buffer with no cap: past the device's maxStorageBuffersPerShaderStage (8 on many GPUs)
// the dispatch fails validation, and with it the whole command buffer it was queued in — the optimizer's
// update included. A two-input add never comes near the limit, on any backend.
import * as tf from '../tf';

export function sumTensors<T extends tf.Tensor>(terms: T[]): T {
  if (terms.length === 0) throw new Error('sumTensors needs at least one tensor');
  return tf.tidy(() => {
    let level: tf.Tensor[] = terms;
    while (level.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? tf.add(level[i], level[i + 1]) : level[i]);
      level = next;
    }
    return level[0] === terms[0] ? tf.clone(level[0]) : level[0];
  }) as T;
}
