// An independent SentencePiece BPE tokenizer over a GGUF file's vocabulary, written from what llama.cpp's
// "llama" tokenizer model does (llama-vocab.cpp, llm_tokenizer_spm): spaces become ▁ (one prepended when
// add_space_prefix), the text starts as single characters, and the adjacent pair whose joined text is the
// highest-scoring token merges first (the leftmost on a tie) until no pair joins into a token; a character
// that is no token becomes its UTF-8 bytes as <0xXX> tokens. Text with special tokens is out of its scope.
export function spmEncode(text: string, tokens: string[], scores: number[], addSpacePrefix: boolean): number[] {
  const id = new Map<string, number>();
  tokens.forEach((t, i) => id.has(t) || id.set(t, i));
  const syms = [...((addSpacePrefix ? ' ' : '') + text).replaceAll(' ', '▁')];
  for (;;) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i + 1 < syms.length; i++) {
      const t = id.get(syms[i] + syms[i + 1]);
      if (t !== undefined && scores[t] > bestScore) [best, bestScore] = [i, scores[t]];
    }
    if (best < 0) break;
    syms.splice(best, 2, syms[best] + syms[best + 1]);
  }
  return syms.flatMap((s) => {
    const t = id.get(s);
    if (t !== undefined) return [t];
    return [...new TextEncoder().encode(s)].map((b) => {
      const byte = id.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      if (byte === undefined) throw new Error(`spm reader: no token for byte ${b}`);
      return byte;
    });
  });
}
