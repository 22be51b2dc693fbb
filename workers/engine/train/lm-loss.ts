// Custom op: the LM head and cross-entropy, row chunk by row chunk, with its own gradient, so that at
// most `chunkRows` × V logits exist at once (SmolLM2's V is 49,152; Qwen2.5's 151,936). The head W is
// frozen: only the hidden states get a gradient. With soft-capping (Gemma's final_logit_softcapping) the
// logits are cap·tanh(z/cap) of the products z, and the gradient carries the tanh's derivative.
import * as tf from '../tf';
import { sumTensors } from '../ops/sum-tensors';
import { lmCrossEntropy, lmCrossEntropyRuns } from '../ops/lm-cross-entropy';
import { VocabMatrix } from '../vocab-matrix';

/** The head as a VocabMatrix ([C, V] tensors are wrapped, not copied or owned). */
const asMatrix = (head: tf.Tensor2D | VocabMatrix) => (head instanceof VocabMatrix ? head : new VocabMatrix('head', [head], true));

/** Rows per chunk so that one chunk's logits take about `budgetBytes` (float32). */
export function chunkRowsFor(vocab: number, budgetBytes = 64 * 1024 * 1024): number {
  return Math.max(1, Math.floor(budgetBytes / (4 * vocab)));
}

function targetLogits(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [n, V] = logits.shape;
  const flatIdx = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(V, 'int32')), targets); // row·V + target
  return tf.gather(logits.reshape([-1]), flatIdx) as tf.Tensor1D; // [n]
}

/** softmax(logits) [n, V] and logsumexp [n], from one softmax kernel (on WASM, 4× faster than exp). The largest
 * probability is exp(max − lse) ≥ 1/V, so lse = max − log(max p) never under- or overflows. */
function softmaxAndLse(logits: tf.Tensor2D): [tf.Tensor2D, tf.Tensor1D] {
  const p = tf.softmax(logits);
  return [p, tf.sub(tf.max(logits, 1), tf.log(tf.max(p, 1)))];
}

/** One chunk's NLL [n], its argmax hits [n] (asked for lazily) and the gradient of its NLL for its hidden rows [n, C]. */
interface Chunk {
  nll: tf.Tensor1D;
  hit: () => tf.Tensor1D;
  g: tf.Tensor2D;
}

/**
 * In tfjs's ops, from the products z [n, V]: dL/dh = ((p − onehot) ⊙ z′) · Wᵀ = (p ⊙ z′) · Wᵀ − z′_target · W[:, target],
 * with z′ = 1 − tanh² under a cap (else 1), so no [n, V] one-hot is built.
 */
function opsChunk(z: tf.Tensor2D, t: tf.Tensor1D, cap: number | null, head: VocabMatrix, headT: tf.Tensor2D[] | undefined, wasm: boolean): Chunk {
  const n = z.shape[0];
  const tc = cap === null ? null : tf.tanh(tf.div(z, cap)); // [n, V]
  const logits = tc ? (tf.mul(tc, cap!) as tf.Tensor2D) : z;
  const [p, lse] = softmaxAndLse(logits);
  const nll = tf.sub(lse, targetLogits(logits, t)) as tf.Tensor1D; // [n]
  const dz = tc ? tf.sub(1, tf.square(tc)) : null; // [n, V]
  const pz = dz ? tf.mul(p, dz) : p;
  const pw = head.back(pz as tf.Tensor2D, headT, wasm); // [n, C]
  const w0 = head.rows(t, headT); // [n, C]: W[:, target]ᵀ
  const wt = dz ? tf.mul(w0, targetLogits(dz as tf.Tensor2D, t).reshape([n, 1])) : w0;
  return { nll, hit: () => tf.cast(tf.equal(tf.argMax(logits, 1), t), 'float32') as tf.Tensor1D, g: tf.sub(pw, wt) as tf.Tensor2D };
}

/** With the fused kernel (ops/lm-cross-entropy.ts): its statistics, and dz = (p − onehot) ⊙ z′ times Wᵀ. */
function fusedChunk(z: tf.Tensor2D, t: tf.Tensor1D, cap: number | null, head: VocabMatrix, headT: tf.Tensor2D[] | undefined, wasm: boolean): Chunk {
  const n = z.shape[0];
  const { stats, dz } = lmCrossEntropy(z, t, cap, true); // [n, 3], [n, V]
  const column = (c: number) => stats.slice([0, c], [n, 1]).reshape([n]) as tf.Tensor1D;
  return { nll: column(1), hit: () => column(2), g: head.back(dz!, headT, wasm) };
}

/** Rows with a non-zero weight, or null when every row has one. */
function weightedRows(weights: Float32Array): Int32Array | null {
  const rows: number[] = [];
  weights.forEach((w, i) => w !== 0 && rows.push(i));
  return rows.length === weights.length ? null : Int32Array.from(rows);
}

/**
 * Σᵢ weightᵢ · CE(hiddenᵢ · W, targetᵢ).
 * hidden [N, C], head [C, V], targets [N], weights [N] → scalar. Targets and weights are host arrays.
 * Rows of weight 0 (prompt tokens, padding) are left out before the head: they cost nothing.
 * Training always wants the gradient, so each chunk computes it together with its loss from the one set of
 * logits: dL/dhᵢ = weightᵢ · (softmax(logitsᵢ) − onehot(targetᵢ)) · Wᵀ = weightᵢ · (pᵢ · Wᵀ − W[:, targetᵢ]),
 * kept as [N, C] (the size of `hidden`) and scaled by the incoming gradient in backward. The logits are
 * never computed twice, and no [n, V] one-hot is built.
 */
export function chunkedLmLoss(hidden: tf.Tensor2D, headIn: tf.Tensor2D | VocabMatrix, targetIds: Int32Array, targetWeights: Float32Array, chunkRows: number, cap: number | null = null, onCorrect?: (correct: tf.Scalar) => void): tf.Scalar {
  return lmLossOp(hidden, headIn, targetIds, targetWeights, chunkRows, cap, null, onCorrect) as tf.Scalar;
}

/**
 * Per-sequence sums: [S] with entry s = Σ over rows i of sequence s (rowSequence[i] = s) of weightᵢ · CE — minus
 * the log-probability of each sequence's trained tokens (DPO's log π(answer | prompt)). Same chunking and
 * gradient as chunkedLmLoss; the incoming gradient of sequence s scales its rows.
 */
export function chunkedSequenceLosses(hidden: tf.Tensor2D, headIn: tf.Tensor2D | VocabMatrix, targetIds: Int32Array, targetWeights: Float32Array, rowSequence: Int32Array, sequences: number, chunkRows: number, cap: number | null = null): tf.Tensor1D {
  return lmLossOp(hidden, headIn, targetIds, targetWeights, chunkRows, cap, { of: rowSequence, count: sequences }) as tf.Tensor1D;
}

/** `onCorrect`: also Σ weighted argmax hits (token accuracy's numerator), from the same logits, handed over as a
 * tensor the caller owns — training reports accuracy beside the loss without a second pass. */
function lmLossOp(hidden: tf.Tensor2D, headIn: tf.Tensor2D | VocabMatrix, targetIds: Int32Array, targetWeights: Float32Array, chunkRows: number, cap: number | null, seq: { of: Int32Array; count: number } | null, onCorrect?: (correct: tf.Scalar) => void): tf.Tensor {
  const N = hidden.shape[0];
  const rows = weightedRows(targetWeights);
  const R = rows ? rows.length : N;
  const ids = rows ? rows.map((r) => targetIds[r]) : targetIds;
  const ws = rows ? Float32Array.from(rows, (r) => targetWeights[r]) : targetWeights;
  const spans: [number, number][] = [];
  for (let s = 0; s < R; s += chunkRows) spans.push([s, Math.min(chunkRows, R - s)]);

  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const h = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const { value, grad, correct } = tf.tidy(() => {
      const hs = rows ? tf.gather(h, tf.tensor1d(rows, 'int32')) : h; // [R, C]
      const head = asMatrix(headIn);
      // WASM multiplies fast only without transposes: one [V, C] copy for all chunks, or, for a vocabulary kept
      // in several blocks (too large for that copy beside its packed twin), one block's copy at a time.
      const wasm = tf.getBackend() === 'wasm';
      const headT = wasm && head.blocks.length === 1 ? head.rowBlocks() : undefined;
      const losses: tf.Tensor[] = [];
      const hits: tf.Tensor[] = [];
      const grads: tf.Tensor[] = [];
      const fused = lmCrossEntropyRuns();
      for (const [s, n] of spans) {
        const t = tf.tensor1d(ids.subarray(s, s + n), 'int32');
        const wSpan = ws.subarray(s, s + n);
        const w = wSpan.every((x) => x === 1) ? null : tf.tensor1d(wSpan, 'float32').reshape([n, 1]); // [n, 1]
        const z = head.project(hs.slice([s, 0], [n, -1])); // [n, V]
        const { nll, hit, g } = fused ? fusedChunk(z, t, cap, head, headT, wasm) : opsChunk(z, t, cap, head, headT, wasm);
        const wnll = w ? tf.mul(nll, w.reshape([n])) : nll; // [n]
        if (onCorrect) hits.push(tf.sum(w ? tf.mul(hit(), w.reshape([n])) : hit()));
        // Per sequence: [1, n] · one-hot [n, S] (a matmul: every backend has one).
        losses.push(seq ? tf.matMul(wnll.reshape([1, n]), sequenceOneHot(seq, rows, s, n)).reshape([seq.count]) : tf.sum(wnll));
        grads.push(w ? tf.mul(g, w) : g);
      }
      const grad = grads.length === 0 ? tf.zeros([0, hidden.shape[1]]) : grads.length === 1 ? grads[0] : tf.concat(grads, 0); // [R, C]
      const value = losses.length === 0 ? (seq ? tf.zeros([seq.count]) : tf.scalar(0)) : losses.length === 1 ? losses[0] : sumTensors(losses);
      const correct = onCorrect ? (hits.length === 0 ? tf.scalar(0) : hits.length === 1 ? hits[0] : sumTensors(hits)) : undefined;
      if (!rows) return { value, grad, correct };
      // Back to all N rows: row i takes its gradient, or the zero row appended at index R.
      const at = new Int32Array(N).fill(R);
      rows.forEach((r, k) => (at[r] = k));
      return { value, grad: tf.gather(tf.concat([grad, tf.zeros([1, hidden.shape[1]])], 0), tf.tensor1d(at, 'int32')), correct };
    });
    if (correct) onCorrect!(correct as tf.Scalar);
    save([grad]);
    return {
      value,
      // Row i's gradient × the incoming gradient of its sequence (of the whole sum, for the scalar loss).
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(saved[0], seq ? tf.gather(dy, tf.tensor1d(seq.of, 'int32')).reshape([N, 1]) : dy)],
    };
  });
  return op(hidden);
}

/** [n, S]: 1 where kept row s0 + k belongs to sequence s. `rows` maps kept rows to all rows (null: all kept). */
function sequenceOneHot(seq: { of: Int32Array; count: number }, rows: Int32Array | null, s0: number, n: number): tf.Tensor2D {
  const m = new Float32Array(n * seq.count);
  for (let k = 0; k < n; k++) m[k * seq.count + seq.of[rows ? rows[s0 + k] : s0 + k]] = 1;
  return tf.tensor2d(m, [n, seq.count]);
}

/** Σ weighted NLL and Σ weighted correct argmax predictions, without gradients (evaluation). */
export function chunkedLmEval(hidden: tf.Tensor2D, headIn: tf.Tensor2D | VocabMatrix, targetIds: Int32Array, targetWeights: Float32Array, chunkRows: number, cap: number | null = null): tf.Tensor1D {
  return tf.tidy(() => {
    const head = asMatrix(headIn);
    const N = hidden.shape[0];
    const parts: tf.Tensor[] = [];
    for (let s = 0; s < N; s += chunkRows) {
      const n = Math.min(chunkRows, N - s);
      parts.push(
        tf.tidy(() => {
          const z = head.project(hidden.slice([s, 0], [n, -1]));
          const t = tf.tensor1d(targetIds.subarray(s, s + n), 'int32');
          const w = tf.tensor1d(targetWeights.subarray(s, s + n), 'float32');
          if (lmCrossEntropyRuns()) return tf.sum(tf.mul(lmCrossEntropy(z, t, cap, false).stats, w.reshape([n, 1])), 0).slice([1], [2]); // [Σ nll, Σ hits]
          const logits = cap === null ? z : (tf.mul(tf.tanh(tf.div(z, cap)), cap) as tf.Tensor2D);
          const nll = tf.sum(tf.mul(tf.sub(softmaxAndLse(logits)[1], targetLogits(logits, t)), w));
          const correct = tf.sum(tf.mul(tf.cast(tf.equal(tf.argMax(logits, 1), t), 'float32'), w));
          return tf.stack([nll, correct]);
        }),
      );
    }
    return sumTensors(parts) as tf.Tensor1D; // [Σ nll, Σ correct]
  });
}
