// Training examples → token ids and loss masks. Chat examples go through the model's own chat template;
// by default only assistant tokens are trained, and OpenAI's per-message weight (0 or 1) is honoured.
import { InvalidRequestError } from '../errors';
import { messagesOf } from '../data/formats';
import { Rng } from '../sampling';
import type { TextTokenizer } from '../tokenizer';
import type { Example, PreferenceExample, TemplateVariables, TrainMessage, TrainOn } from '../../shared/types';

export type { Example, PreferenceExample, TrainMessage, TrainOn };


export interface TokenizedExample {
  ids: number[];
  /** trained[i] = 1 when token i is a training target (predicted from tokens before it). */
  trained: Uint8Array;
  /** Tokens cut off by the length limit. */
  truncated: number;
}


/**
 * Assistant content spans as [start, end) character ranges of the rendered text, with their weight. A turn
 * starts where the conversation up to it, rendered with the generation prompt, ends. It ends where the
 * conversation through it ends — or, when the template renders a turn differently once later turns follow
 * (Qwen3 drops an earlier answer's <think> block), at the first end-of-turn token after its start.
 */
function assistantSpans(tok: TextTokenizer, messages: TrainMessage[], full: string, extra: TemplateVariables): { start: number; end: number; weight: number }[] {
  const spans: { start: number; end: number; weight: number }[] = [];
  const plain = messages.map(({ weight: _, ...m }) => m);
  const cannot = () => new InvalidRequestError('This model\'s chat template does not render conversations prefix by prefix, so assistant tokens cannot be located. Train on the whole text instead.');
  const markers = tok.eosIds.map((id) => tok.decode([id], false)).filter((t) => t.length > 0);
  for (let i = 0; i < messages.length; i++) {
    if (messages[i].role !== 'assistant') continue;
    const before = tok.applyChatTemplate(plain.slice(0, i), true, extra); // up to the assistant header
    const through = tok.applyChatTemplate(plain.slice(0, i + 1), false, extra); // through the answer and its end marker
    if (!full.startsWith(before)) throw cannot();
    let end = through.length;
    if (!full.startsWith(through) || !through.startsWith(before)) {
      const ends = markers.map((m) => full.indexOf(m, before.length)).filter((at) => at >= 0);
      if (ends.length === 0) throw cannot();
      const at = Math.min(...ends);
      end = at + markers.find((m) => full.startsWith(m, at))!.length;
    }
    if (spans.length > 0 && before.length < spans[spans.length - 1].end) throw cannot();
    spans.push({ start: before.length, end, weight: messages[i].weight ?? 1 });
  }
  return spans;
}

/**
 * A base model (no chat template) reads a one-answer conversation as raw prompt/completion text: the
 * prompt (a system message, a blank line, then the user's) is read with the tokenizer's own special tokens,
 * then the answer and an end-of-sequence token, which alone are trained (all of it with trainOn "all").
 */
function rawCompletion(tok: TextTokenizer, messages: TrainMessage[], trainOn: TrainOn): { ids: number[]; trained: number[] } {
  const roles = messages.map((m) => m.role).join(',');
  if (roles !== 'user,assistant' && roles !== 'system,user,assistant') {
    throw new InvalidRequestError(`This model has no chat template, so a conversation of ${messages.length} messages (${roles}) cannot be rendered. Use plain text ({"text"}) or prompt/completion data, or a model with a chat template.`);
  }
  const answer = messages[messages.length - 1];
  const prompt = messages.slice(0, -1).map((m) => m.content).join('\n\n');
  const promptIds = tok.encode(prompt, true);
  const answerIds = tok.encode(answer.content);
  const eos = tok.eosIds[0];
  if (eos !== undefined) answerIds.push(eos);
  const weight = answer.weight ?? 1;
  return {
    ids: [...promptIds, ...answerIds],
    trained: [...promptIds.map((_, i) => (trainOn === 'all' && i > 0 ? 1 : 0)), ...answerIds.map(() => weight)],
  };
}

/** Why this template cannot render the example's tool calls or tool schemas (they would vanish from the text
 * trained on), or null when it can or the example has none. */
export function toolsUnsupported(tok: TextTokenizer, ex: Example): string | null {
  if ('text' in ex) return null;
  const calls = messagesOf(ex).some((m) => m.tool_calls?.length || m.role === 'tool');
  const schemas = (ex.tools?.length ?? 0) > 0;
  if (!calls && !schemas) return null;
  const can = tok.hasChatTemplate ? tok.templateTools : { calls: false, schemas: false };
  if ((calls && can.calls) || (!calls && can.schemas)) return null;
  return `It has ${calls ? 'tool calls' : 'tool schemas ("tools")'}, which ${tok.templateName} does not render, so they would be dropped from what is trained. Use a model whose template supports tools (Qwen2.5, Qwen3, Llama 3.1 and later, SmolLM3), or remove the tool turns.`;
}

export function tokenizeExample(tok: TextTokenizer, ex: Example, maxSeqLen: number, trainOn: TrainOn): TokenizedExample {
  if ('chosen' in ex) throw new InvalidRequestError('This is a preference pair (chosen/rejected); train it with the DPO method, not SFT.');
  const noTools = toolsUnsupported(tok, ex);
  if (noTools) throw new InvalidRequestError(noTools);
  let ids: number[];
  let trained: number[];
  if ('messages' in ex && !tok.hasChatTemplate) {
    ({ ids, trained } = rawCompletion(tok, ex.messages, trainOn));
  } else if ('text' in ex) {
    ids = tok.encode(ex.text, true);
    const eos = tok.eosIds[0];
    if (eos !== undefined && ids[ids.length - 1] !== eos) ids.push(eos); // learn where a text ends
    trained = ids.map((_, i) => (i === 0 ? 0 : 1));
  } else {
    const extra = ex.tools ? { tools: ex.tools } : {};
    const plain = ex.messages.map(({ weight: _, ...m }) => m);
    const full = tok.applyChatTemplate(plain, false, extra);
    const spans = trainOn === 'assistant' ? assistantSpans(tok, ex.messages, full, extra) : [{ start: 0, end: full.length, weight: 1 }];
    // Tokenize segment by segment so that span edges fall on token edges.
    ids = [];
    trained = [];
    let pos = 0;
    const eos = new Set(tok.eosIds);
    for (const span of [...spans, { start: full.length, end: full.length, weight: 0 }]) {
      // Appended one by one: push(...xs) overflows the call stack for a very long text (a 200 kB line).
      for (const id of tok.encode(full.slice(pos, span.start))) {
        ids.push(id);
        trained.push(0);
      }
      const inside = tok.encode(full.slice(span.start, span.end));
      // Train through the end-of-turn token; what the template adds after it (a newline) is never generated.
      let last = inside.length - 1;
      while (last >= 0 && !eos.has(inside[last]) && inside.slice(0, last).some((t) => eos.has(t))) last--;
      for (let j = 0; j < inside.length; j++) {
        ids.push(inside[j]);
        trained.push(span.weight && j <= last ? 1 : 0);
      }
      pos = span.end;
    }
    if (trainOn === 'all') trained[0] = 0;
  }
  const truncated = Math.max(0, ids.length - maxSeqLen);
  return { ids: ids.slice(0, maxSeqLen), trained: Uint8Array.from(trained.slice(0, maxSeqLen)), truncated };
}

/** A preference pair as two sequences, prompt + chosen and prompt + rejected; only the answers are trained
 * (they are what DPO's log-probabilities sum over). */
export interface TokenizedPair {
  chosen: TokenizedExample;
  rejected: TokenizedExample;
}

export function tokenizePair(tok: TextTokenizer, ex: PreferenceExample, maxSeqLen: number): TokenizedPair {
  const prompt = ex.prompt.map((m) => (m.role === 'assistant' ? { ...m, weight: 0 as const } : m)); // earlier turns: context only
  const side = (answer: TrainMessage[]) => tokenizeExample(tok, { messages: [...prompt, ...answer.map(({ weight: _, ...m }) => m)], ...(ex.tools ? { tools: ex.tools } : {}) }, maxSeqLen, 'assistant');
  return { chosen: side(ex.chosen), rejected: side(ex.rejected) };
}

/** Number of training targets in an example. */
export function trainedCount(ex: TokenizedExample): number {
  let n = 0;
  for (let i = 1; i < ex.trained.length; i++) n += ex.trained[i];
  return n;
}

export interface Batch {
  ids: Int32Array; // [B, T] input ids, padded
  targets: Int32Array; // [B, T] next ids
  weights: Float32Array; // [B, T] 1 where the target is trained, 0 elsewhere (padding included)
  B: number;
  T: number;
  tokens: number; // real (unpadded) tokens
  trained: number; // Σ weights
}

/**
 * Examples as one right-padded batch. Padding is inert whatever its id: a padded position comes after every
 * real one (so under the causal mask no real token attends to it) and its target's weight is 0. Any id in
 * the vocabulary will do; 0 always is one (tests/lora.test.ts checks a batch's loss against its examples').
 */
export function collate(examples: TokenizedExample[]): Batch {
  const T = Math.max(1, ...examples.map((e) => e.ids.length - 1));
  const B = examples.length;
  const ids = new Int32Array(B * T); // padded with id 0
  const targets = new Int32Array(B * T);
  const weights = new Float32Array(B * T);
  let tokens = 0;
  let trained = 0;
  examples.forEach((e, b) => {
    for (let t = 0; t + 1 < e.ids.length; t++) {
      ids[b * T + t] = e.ids[t];
      targets[b * T + t] = e.ids[t + 1];
      weights[b * T + t] = e.trained[t + 1];
      trained += e.trained[t + 1];
    }
    tokens += e.ids.length;
  });
  return { ids, targets, weights, B, T, tokens, trained };
}

/**
 * The batches of one epoch: a seeded shuffle, then examples of similar length grouped (sorted within
 * windows of 50 batches), then the batches shuffled. Same seed and epoch → same order.
 */
export function epochBatches(n: number, batchSize: number, seed: number, epoch: number, lengths: number[]): number[][] {
  const rng = new Rng((seed * 0x9e3779b1 + epoch * 0x85ebca6b) >>> 0);
  const order = Array.from({ length: n }, (_, i) => i);
  shuffle(order, rng);
  const window = batchSize * 50;
  const grouped: number[] = [];
  for (let s = 0; s < n; s += window) grouped.push(...order.slice(s, s + window).sort((a, b) => lengths[a] - lengths[b] || a - b));
  const batches: number[][] = [];
  for (let s = 0; s < n; s += batchSize) batches.push(grouped.slice(s, s + batchSize));
  shuffle(batches, rng);
  return batches;
}

export function shuffle<T>(a: T[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
}
