// Side-by-side evaluation: held-out chat examples answered greedily by the base model (LoRA scale 0) and
// by the tuned one (the live adapter at the request's scale), each example also scored under both. A
// preference pair's prompt is answered the same way, and its chosen-vs-rejected margin read under both.
import * as tf from './tf';
import type { Engine } from './engine';
import { InvalidRequestError } from './errors';
import { collate, tokenizeExample, tokenizePair, type Example, type PreferenceExample } from './train/examples';
import { sequenceLogProbs } from './train/dpo';
import { chunkedLmEval, chunkRowsFor } from './train/lm-loss';
import { splitIndices } from './train/split';
import type { EvalRequest, EvalRow } from '../shared/types';

/** The examples a request evaluates: the run's validation split (same split and seed), else the first ones. */
export function evaluationExamples(all: Example[], req: Pick<EvalRequest, 'split' | 'limit'>): Example[] {
  const chosen = req.split && req.split.valSplit > 0 ? splitIndices(all.length, req.split.valSplit, req.split.seed).val.map((i) => all[i]) : all;
  return chosen.filter((e) => !('text' in e)).slice(0, req.limit);
}

/** log π(chosen) − log π(rejected) of a pair at each LoRA scale: above 0, that model prefers the chosen answer. */
async function pairMargins(engine: Engine, pair: PreferenceExample, scales: number[]): Promise<number[]> {
  const { model, tokenizer } = engine.current;
  const p = tokenizePair(tokenizer, pair, model.config.maxPositions);
  const b = collate([p.chosen, p.rejected]);
  const out: number[] = [];
  for (const loraScale of scales) {
    const logp = tf.tidy(() => sequenceLogProbs(model, b, { adapter: engine.adapter, loraScale }, chunkRowsFor(model.config.vocabSize)));
    const [c, r] = await logp.data();
    logp.dispose();
    out.push(c - r);
  }
  return out;
}

/** One chat example's prompt (every message before its last assistant message) answered and scored twice. */
export async function evaluateExample(engine: Engine, input: Example, index: number, maxNewTokens = 128, loraScale = 1): Promise<EvalRow> {
  const { model, tokenizer } = engine.current;
  if ('text' in input) throw new InvalidRequestError('Evaluation needs chat examples (with an assistant answer).');
  // A pair is answered as its prompt, compared with its chosen answer.
  const example = 'chosen' in input ? { messages: [...input.prompt, ...input.chosen], tools: input.tools } : input;
  const last = example.messages.map((m) => m.role).lastIndexOf('assistant');
  if (last < 0) throw new InvalidRequestError('This example has no assistant answer to compare with.');
  const prompt = example.messages.slice(0, last).map(({ weight: _, ...m }) => m); // tool calls and results included
  const tools = 'tools' in input && input.tools ? { tools: input.tools } : undefined;
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
  const answer = async (scale: number) => (await engine.generate({ messages: prompt, template: tools }, { maxNewTokens, loraScale: scale })).text;
  const base = await answer(0);
  const baseLoss = await score(0);
  const tuned = adapter ? await answer(loraScale) : null;
  const tunedLoss = adapter ? await score(loraScale) : null;
  const row: EvalRow = { index, prompt: prompt.filter((m) => m.role === 'user').pop()?.content ?? '', expected: example.messages[last].content, base, tuned, baseLoss, tunedLoss };
  if ('chosen' in input) {
    const [baseMargin, tunedMargin] = await pairMargins(engine, input, adapter ? [0, loraScale] : [0]);
    Object.assign(row, { rejected: input.rejected.map((m) => m.content).join('\n'), baseMargin, tunedMargin: tunedMargin ?? null });
  }
  return row;
}
