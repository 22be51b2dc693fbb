// The tokenizer of a GGUF file, from the model's tokenizer.json, in one of llama.cpp's two BPE forms:
// - "gpt2": byte-level BPE (SmolLM2, Llama 3, Qwen): the tokens, their types, the merges, and the name of the
//   pre-tokenizer's split (tokenizer.ggml.pre), which llama.cpp knows by name only.
// - "llama": SentencePiece BPE with byte fallback (Gemma, Llama 2, TinyLlama): the tokens, their types and a
//   score per token. llama.cpp merges the adjacent pair whose joined text is the highest-scoring token, so the
//   score of a token is minus the rank of the first merge that forms it: the merge order tokenizer.json lists.
import { GgufUnsupportedError } from '../errors';

type Json = Record<string, unknown>;

/** llama.cpp's token types (llama_token_type). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export type GgufVocab =
  | { model: 'gpt2'; pre: string; tokens: string[]; types: number[]; merges: string[] }
  | { model: 'llama'; addSpacePrefix: boolean; tokens: string[]; types: number[]; scores: number[] };

// The pre-tokenizers of the byte-level BPE families llama.cpp knows, by the split each one makes.
const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** tokenizer.ggml.pre: llama.cpp's name for how text is split before BPE, read from tokenizer.json's pre_tokenizer. */
export function ggufPreTokenizer(pre: unknown): string {
  const p = (pre ?? {}) as Json;
  const byteLevel = (x: Json, regex: boolean) => x.type === 'ByteLevel' && (x.use_regex !== false) === regex;
  if (byteLevel(p, true)) return 'gpt-2'; // llama.cpp's name for GPT-2's own split (the tokenizer model is "gpt2")
  const seq = p.type === 'Sequence' && Array.isArray(p.pretokenizers) ? (p.pretokenizers as Json[]) : null;
  if (seq?.length === 2 && seq[0].type === 'Digits' && seq[0].individual_digits === true && byteLevel(seq[1], true)) return 'smollm';
  if (seq?.length === 2 && seq[0].type === 'Split' && byteLevel(seq[1], false)) {
    const regex = ((seq[0].pattern ?? {}) as Json).Regex;
    if (regex === LLAMA3_SPLIT) return 'llama-bpe';
    if (regex === QWEN2_SPLIT) return 'qwen2';
  }
  throw new GgufUnsupportedError(`tokenizer.json's pre_tokenizer (${JSON.stringify(pre).slice(0, 200)}) is not one of the byte-level splits llama.cpp names (GPT-2, SmolLM, Llama 3, Qwen2)`);
}

const isSpaceToMeta = (n: Json) => n.type === 'Replace' && ((n.pattern ?? {}) as Json).String === ' ' && n.content === '▁';
const isPrependMeta = (n: Json) => n.type === 'Prepend' && n.prepend === '▁';

/**
 * Whether llama.cpp's SentencePiece tokenizer, which turns spaces into ▁ and may prepend one (add_space_prefix),
 * does what tokenizer.json's normalizer and pre-tokenizer do. The forms transformers' converters write:
 * Replace(" " → ▁) [+ Split on " ", a no-op after it] (Gemma); Prepend(▁) + Replace (Llama 2, legacy);
 * Metaspace without splitting (Llama 2, current). Anything else is refused.
 */
export function spmSpacePrefix(normalizer: unknown, preTokenizer: unknown): boolean {
  const n = (normalizer ?? null) as Json | null;
  const p = (preTokenizer ?? null) as Json | null;
  const steps = n === null ? [] : n.type === 'Sequence' && Array.isArray(n.normalizers) ? (n.normalizers as Json[]) : [n];
  const refuse = () => {
    throw new GgufUnsupportedError(`its SentencePiece tokenizer's normalizer (${JSON.stringify(normalizer).slice(0, 160)}) and pre_tokenizer (${JSON.stringify(preTokenizer).slice(0, 160)}) are not a form llama.cpp's SentencePiece tokenizer reproduces`);
  };
  if (steps.length > 0) {
    const replaceLast = steps.length <= 2 && isSpaceToMeta(steps[steps.length - 1]) && (steps.length === 1 || isPrependMeta(steps[0]));
    const splitNoop = p === null || (p.type === 'Split' && ((p.pattern ?? {}) as Json).String === ' '); // no spaces remain to split
    if (!replaceLast || !splitNoop) refuse();
    return steps.length === 2;
  }
  if (p?.type === 'Metaspace' && p.replacement === '▁' && p.split === false) {
    const scheme = p.prepend_scheme ?? (p.add_prefix_space === false ? 'never' : 'always');
    return scheme !== 'never';
  }
  return refuse();
}

/**
 * The vocabulary as llama.cpp reads it: one token per embedding row (rows no token uses are [PAD<id>],
 * unused), each with its type; byte-level vocabularies with their merges, SentencePiece ones with scores.
 */
export function ggufVocab(tokenizerJson: Json, vocabSize: number): GgufVocab {
  const model = (tokenizerJson.model ?? {}) as Json;
  if (model.type !== 'BPE') throw new GgufUnsupportedError(`its tokenizer is ${String(model.type)}; only BPE vocabularies (byte-level or SentencePiece with byte fallback) are written`);
  const spm = model.byte_fallback === true;
  const tokens: (string | undefined)[] = new Array(vocabSize);
  const types = new Array<number>(vocabSize).fill(TOKEN_TYPE.normal);
  const vocab = (model.vocab ?? {}) as Record<string, number>;
  for (const [token, id] of Object.entries(vocab)) {
    if (id >= vocabSize) continue;
    tokens[id] = token;
    if (spm && /^<0x[0-9A-F]{2}>$/.test(token)) types[id] = TOKEN_TYPE.byte;
  }
  for (const a of (tokenizerJson.added_tokens ?? []) as { id: number; content: string; special?: boolean }[]) {
    if (a.id >= vocabSize) continue; // past the embedding: no text can use it (the loader warned)
    tokens[a.id] = a.content;
    types[a.id] = a.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
  const unk = typeof model.unk_token === 'string' ? vocab[model.unk_token] : undefined;
  if (spm && unk !== undefined && unk < vocabSize) types[unk] = TOKEN_TYPE.unknown;
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TOKEN_TYPE.unused;
    }
  }
  const merges = ((model.merges ?? []) as (string | [string, string])[]).map((m): [string, string] => {
    if (Array.isArray(m)) return m;
    const at = m.indexOf(' ');
    return [m.slice(0, at), m.slice(at + 1)];
  });
  if (!spm) return { model: 'gpt2', pre: ggufPreTokenizer(tokenizerJson.pre_tokenizer), tokens: tokens as string[], types, merges: merges.map((m) => m.join(' ')) };

  const addSpacePrefix = spmSpacePrefix(tokenizerJson.normalizer, tokenizerJson.pre_tokenizer);
  // Special, byte and user-defined tokens score 0, as SentencePiece's own files give them; a normal token no
  // merge forms scores below every merge, so llama.cpp joins it last, if at all (tokenizer.json never does).
  const scores = Float64Array.from(types, (t, id) => (t === TOKEN_TYPE.normal ? -(merges.length + id) : 0));
  const formed = new Set<number>();
  merges.forEach(([a, b], rank) => {
    const id = vocab[a + b];
    if (id === undefined || id >= vocabSize || types[id] !== TOKEN_TYPE.normal || formed.has(id)) return;
    formed.add(id);
    scores[id] = -rank;
  });
  return { model: 'llama', addSpacePrefix, tokens: tokens as string[], types, scores: [...scores] };
}
