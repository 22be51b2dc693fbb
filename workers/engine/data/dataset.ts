// A dataset file → the examples that load plus a report of every finding, by line. Bad lines are listed,
// never silently dropped; good lines load; the original text is not touched (the caller keeps it).
import type { Example, TrainOn } from '../train/examples';
import { tokenizeExample, tokenizePair, toolsUnsupported, trainedCount, type TokenizedExample } from '../train/examples';
import type { TextTokenizer } from '../tokenizer';
import { convert, detectFormat, fillPlaceholders, FORMAT_LABELS, FORMATS, placeholdersOf, type DatasetFormat, type Finding } from './formats';
import { decodeDatasetBytes, readRecords, type RawRecord } from './records';
import { ERROR_CODES } from '../../shared/defaults';
import type { DatasetReport, TokenStats } from '../../shared/types';

export type { DatasetReport, TokenStats };

export type { DatasetFormat, Finding };

const ERRORS = new Set<string>(ERROR_CODES);


export interface DatasetExample {
  line: number;
  example: Example;
}

export interface LoadedDataset {
  report: DatasetReport;
  examples: DatasetExample[];
}

/** Placeholder values to put into the examples ({{name}} → fill.name) before they are checked and trained. */
export type PlaceholderFill = Readonly<Record<string, string>>;

/** `text`: how the file's bytes were read — `lossy` when some were not valid text (each such line is warned about).
 * `fill`: values for {{placeholders}}; each record still holding one is warned about, and the report lists their names. */
export function loadRecords(records: RawRecord[], force?: DatasetFormat, text: { lossy: boolean; encoding?: string } = { lossy: false }, fill: PlaceholderFill = {}): LoadedDataset {
  const errors: Finding[] = [];
  const warnings: Finding[] = [];
  if (text.encoding === 'utf-16le' || text.encoding === 'utf-16be') {
    warnings.push({ line: 1, code: 'utf16_decoded', message: `The file is UTF-16 (${text.encoding === 'utf-16le' ? 'little' : 'big'}-endian), as Windows PowerShell's > writes; it was read as such. Save it as UTF-8 for other tools.` });
  }
  if (text.lossy) {
    const flagged = records.filter((r) => r.replaced);
    for (const r of flagged.length ? flagged : [{ line: 1 }]) {
      warnings.push({ line: r.line, code: 'invalid_utf8', message: 'Holds bytes that are not valid text in the file\'s encoding; they read as \uFFFD and would be trained so. Re-save the file as UTF-8.' });
    }
  }
  const formats: Partial<Record<DatasetFormat, number>> = {};
  const detected = records.map((r) => ('value' in r && r.value !== null && typeof r.value === 'object' && !Array.isArray(r.value) ? detectFormat(r.value as Record<string, unknown>) : null));
  for (const f of detected) if (f) formats[f] = (formats[f] ?? 0) + 1;
  const dominant = force ?? (Object.entries(formats).sort((a, b) => b[1] - a[1])[0]?.[0] as DatasetFormat | undefined) ?? null;
  const examples: DatasetExample[] = [];
  const seen = new Map<string, number>();
  const placeholders = new Set<string>();

  records.forEach((r, i) => {
    if ('error' in r) {
      errors.push({ line: r.line, code: 'invalid_json', message: `Not valid JSON (${r.error}). Fix the line or remove it.` });
      return;
    }
    if (r.duplicateKey !== undefined) {
      warnings.push({ line: r.line, code: 'duplicate_key', message: `The key "${r.duplicateKey}" appears twice in one object; JSON keeps only the last one, so the first is ignored. Remove the one you do not mean.` });
    }
    const own = detected[i];
    let format: DatasetFormat;
    if (r.value === null || typeof r.value !== 'object' || Array.isArray(r.value)) {
      format = dominant ?? 'openai'; // convert() reports not_an_object
    } else if (force && own !== force) {
      errors.push({ line: r.line, code: 'unknown_format', message: `Does not have the fields of ${FORMAT_LABELS[force]}, the format chosen for this file.` });
      return;
    } else if (!own) {
      const keys = Object.keys(r.value as object);
      errors.push({ line: r.line, code: 'unknown_format', message: `Matches no known format (keys: ${keys.length ? keys.join(', ') : 'none'}). Use one of: ${FORMATS.map((f) => FORMAT_LABELS[f]).join('; ')}.` });
      return;
    } else format = own;
    if (dominant && own && (own === 'preference') !== (dominant === 'preference')) {
      errors.push({ line: r.line, code: 'mixed_method', message: own === 'preference' ? `Is a preference pair while most of the file is ${FORMAT_LABELS[dominant]}; a run learns either answers (SFT) or pairs (DPO). Move the pairs to a file of their own.` : `Is ${FORMAT_LABELS[own]} while most of the file is preference pairs; a DPO run needs a chosen and a rejected answer on every line. Move it to an SFT file, or add both answers.` });
      return;
    }
    const { example: converted, findings } = convert(r.value, format, r.line);
    for (const f of findings) (ERRORS.has(f.code) ? errors : warnings).push(f);
    if (!converted) return;
    const example = Object.keys(fill).length ? fillPlaceholders(converted, fill) : converted;
    const names = placeholdersOf(example);
    if (names.length) {
      names.forEach((n) => placeholders.add(n));
      const list = names.map((n) => `{{${n}}}`).join(', ');
      warnings.push({ line: r.line, code: 'unfilled_placeholder', message: `Holds ${list}, which would be trained literally. Fill ${names.length === 1 ? 'it' : 'them'} in before training (the placeholder fields beside the report, or --fill ${names[0]}=…), or edit the file.` });
    }
    if (dominant && own && own !== dominant) warnings.push({ line: r.line, code: 'mixed_formats', message: `Is ${FORMAT_LABELS[own]} while most of the file is ${FORMAT_LABELS[dominant]}; it is converted all the same.` });
    const key = JSON.stringify(example);
    const first = seen.get(key);
    if (first !== undefined) warnings.push({ line: r.line, code: 'duplicate_example', message: `Same example as line ${first}; it would be trained on twice.` });
    else seen.set(key, r.line);
    examples.push({ line: r.line, example });
  });
  const byLine = (a: Finding, b: Finding) => a.line - b.line;
  const report: DatasetReport = { format: dominant, formats, records: records.length, valid: examples.length, errors: errors.sort(byLine), warnings: warnings.sort(byLine) };
  if (placeholders.size) report.placeholders = [...placeholders].sort();
  return { report, examples };
}

/** Parse a whole file's text. `name` tells .json (one array) from .jsonl. */
export function loadDataset(name: string, text: string, force?: DatasetFormat, fill?: PlaceholderFill): LoadedDataset {
  return loadRecords(readRecords(name, text), force, undefined, fill);
}

/** Parse a whole file's bytes: UTF-8 (with or without BOM) or UTF-16; invalid bytes warned about per line; gzip refused. */
export function loadDatasetBytes(name: string, bytes: Uint8Array, force?: DatasetFormat, fill?: PlaceholderFill): LoadedDataset {
  const { text, lossy, encoding } = decodeDatasetBytes(name, bytes);
  return loadRecords(readRecords(name, text), force, { lossy, encoding }, fill);
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))];
}

/**
 * Token statistics with the chosen model's tokenizer and chat template, and a too_long warning for each
 * example that truncation at maxSeqLen would cut. Adds both to the report.
 */
export function addTokenStats(data: LoadedDataset, tok: TextTokenizer, maxSeqLen: number, trainOn: TrainOn = 'assistant', bins = 20): void {
  const lengths: number[] = [];
  let trained = 0;
  let cut = 0;
  let overMax = 0;
  let untrained = 0;
  for (const { line, example } of data.examples) {
    const noTools = toolsUnsupported(tok, example);
    if (noTools) {
      data.report.warnings.push({ line, code: 'tools_unsupported', message: `${noTools} Training refuses it.` });
      continue;
    }
    // A pair counts as its two sequences (prompt + chosen, prompt + rejected): both are trained on.
    const seqs: [string, TokenizedExample][] = 'chosen' in example ? Object.entries(tokenizePair(tok, example, Number.MAX_SAFE_INTEGER)) : [['', tokenizeExample(tok, example, Number.MAX_SAFE_INTEGER, trainOn)]];
    for (const [side, t] of seqs) {
      const n = t.ids.length;
      const what = side ? `With the ${side} answer, ${n} tokens` : `${n} tokens`;
      lengths.push(n);
      trained += trainedCount(t);
      if (n <= maxSeqLen) continue;
      overMax++;
      cut += n - maxSeqLen;
      data.report.warnings.push({ line, code: 'too_long', message: `${what}; it will be truncated at the maximum length ${maxSeqLen}, cutting ${n - maxSeqLen} tokens.` });
      if (trainedCount(t) > 0 && !t.trained.subarray(1, maxSeqLen).includes(1)) {
        untrained++;
        data.report.warnings.push({ line, code: 'no_trained_token', message: `${side ? `the ${side} answer lies wholly` : 'every trained token lies'} past the maximum length ${maxSeqLen}, so this ${side ? 'pair' : 'example'} teaches nothing. Raise the maximum length, or shorten its prompt.` });
      }
    }
  }
  data.report.warnings.sort((a, b) => a.line - b.line);
  const sorted = [...lengths].sort((a, b) => a - b);
  const max = sorted[sorted.length - 1] ?? 0;
  const width = Math.max(1, Math.ceil((max + 1) / bins));
  const edges = Array.from({ length: bins + 1 }, (_, i) => i * width);
  const counts = new Array<number>(bins).fill(0);
  for (const n of lengths) counts[Math.min(bins - 1, Math.floor(n / width))]++;
  data.report.tokens = {
    total: lengths.reduce((a, b) => a + b, 0),
    trained,
    min: sorted[0] ?? 0,
    median: quantile(sorted, 0.5),
    p95: quantile(sorted, 0.95),
    max,
    maxSeqLen,
    overMax,
    cut,
    untrained,
    histogram: { edges, counts },
  };
}
