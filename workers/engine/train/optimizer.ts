// AdamW (decoupled weight decay) with gradient clipping by global norm. A step whose gradient norm is not
// finite changes nothing: the check runs on the device, so no value is read back to decide it.
import * as tf from '../tf';
import { sumTensors } from '../ops/sum-tensors';
import { adamwKernels, hasFusedAdamW } from '../ops/adamw';
import type { TrainConfig } from './config';

export class AdamW {
  readonly m: tf.Variable[];
  readonly v: tf.Variable[];
  /** Updates applied so far (Adam's bias-correction t). */
  t = 0;

  constructor(
    readonly params: tf.Variable[],
    private readonly cfg: TrainConfig,
  ) {
    const zeros = (p: tf.Variable) => {
      const z = tf.zerosLike(p);
      const v = tf.variable(z, false);
      z.dispose(); // the variable keeps the data; the initial tensor would otherwise outlive the run
      return v;
    };
    this.m = params.map(zeros);
    this.v = params.map(zeros);
  }

  /**
   * Clip, then update every parameter. Returns the global gradient norm (before clipping) as a kept
   * scalar the caller disposes; when it is not finite the parameters and moments are left as they were.
   */
  step(grads: tf.Tensor[], lr: number): tf.Scalar {
    this.t++;
    const { beta1, beta2, epsilon, weightDecay, maxGradNorm } = this.cfg;
    const c1 = 1 - Math.pow(beta1, this.t);
    const c2 = 1 - Math.pow(beta2, this.t);
    return tf.tidy(() => {
      const norm = tf.sqrt(sumTensors(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
      const ok = tf.isFinite(norm);
      const clip = tf.minimum(1, tf.div(maxGradNorm, tf.add(norm, 1e-6))) as tf.Scalar;
      if (hasFusedAdamW()) {
        // WebGPU and WASM: three kernels per parameter (ops/adamw.ts), the same update as the ops below.
        this.params.forEach((p, i) => {
          const [np, nm, nv] = adamwKernels(p, this.m[i], this.v[i], grads[i], clip, ok as tf.Scalar, { beta1, beta2, c1, c2, epsilon, lr, decay: weightDecay });
          p.assign(np);
          this.m[i].assign(nm);
          this.v[i].assign(nv);
        });
        return tf.keep(norm);
      }
      this.params.forEach((p, i) => {
        const g = tf.mul(grads[i], clip);
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon));
        const decayed = weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        const next = tf.sub(decayed, tf.mul(update, lr));
        p.assign(tf.where(ok, next, p));
        this.m[i].assign(tf.where(ok, m, this.m[i]));
        this.v[i].assign(tf.where(ok, v, this.v[i]));
      });
      return tf.keep(norm);
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
