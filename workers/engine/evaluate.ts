// Side-by-side evaluation: held-out chat examples answered greedily by the base model (LoRA scale 0) and
// by the tuned one (the live adapter at the request's scale), each example also scored under both.
import * as tf from './tf';
import type { Engine } from './engine';
import { InvalidRequestError } from './errors';
import { collate, tokenizeExample, type Example } from './train/examples';
import { chunkedLmEval, chunkRowsFor } from './train/lm-loss';
import { splitIndices } from './train/split';
import type { EvalRequest, EvalRow } from '../shared/types';

/** The examples a request evaluates: the run's validation split (same split and seed), else the first ones. */
export function evaluationExamples(all: Example[], req: Pick<EvalRequest, 'split' | 'limit'>): Example[] {
  const chosen = req.split && req.split.valSplit > 0 ? splitIndices(all.length, req.split.valSplit, req.split.seed).val.map((i) => all[i]) : all;
  return chosen.filter((e) => 'messages' in e).slice(0, req.limit);
}

/** One chat example's prompt (every message before its last assistant message) answered and scored twice. */
export async function evaluateExample(engine: Engine, example: Example, index: number, maxNewTokens = 128, loraScale = 1): Promise<EvalRow> {
  const { model, tokenizer } = engine.current;
  if (!('messages' in example)) throw new InvalidRequestError('Evaluation needs chat examples (with an assistant answer).');
  const last = example.messages.map((m) => m.role).lastIndexOf('assistant');
  if (last < 0) throw new InvalidRequestError('This example has no assistant answer to compare with.');
  const prompt = example.messages.slice(0, last).map(({ role, content }) => ({ role, content }));
  const adapter = engine.adapter;
  // The example as the model scores it: tokenized and batched once, for both sides.
  const b = collate([tokenizeExample(tokenizer, example, model.config.maxPositions, 'assistant')]);
  const count = Math.max(1, b.trained);
  const score = async (scale: number) => {
    const stats = tf.tidy(() => {
      const hidden = model.forward(tf.tensor2d(b.ids, [1, b.T], 'int32'), { adapter, loraScale: scale });
      return chunkedLmEval(hidden.reshape([b.T, -1]) as tf.Tensor2D, model.head(), b.targets, b.weights, chunkRowsFor(model.config.vocabSize), model.config.finalSoftcap);
    });
    const nll = (await stats.data())[0];
    stats.dispose();
    return nll / count;
  };
  const answer = async (scale: number) => (await engine.generate({ messages: prompt }, { maxNewTokens, loraScale: scale })).text;
  const base = await answer(0);
  const baseLoss = await score(0);
  const tuned = adapter ? await answer(loraScale) : null;
  const tunedLoss = adapter ? await score(loraScale) : null;
  return { index, prompt: prompt.filter((m) => m.role === 'user').pop()?.content ?? '', expected: example.messages[last].content, base, tuned, baseLoss, tunedLoss };
}
