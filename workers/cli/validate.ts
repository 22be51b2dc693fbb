// `validate`: the dataset report — format, line-numbered errors and warnings, and token statistics.
import { readFile } from 'node:fs/promises';
import { addTokenStats, loadDatasetBytes, type LoadedDataset } from '../engine/data/dataset';
import { FORMATS, type DatasetFormat } from '../engine/data/formats';
import { InvalidRequestError } from '../engine/errors';
import { parseConfig } from '../engine/config';
import { loadTokenizer } from '../engine/load';
import { DEFAULT_TRAIN } from '../shared/defaults';
import { resolveModelArg } from '../node/dir-files';
import { fillArg, number, parse } from './args';

export const VALIDATE_HELP = `
validate options:
  --data <file>              .jsonl (one example per line) or .json (an array); formats: ${FORMATS.join(', ')}
  --format <name>            force a format instead of detecting it
  --model <dir|url|hub-id>   count tokens with this model's tokenizer and chat template
  --max-seq-len L            the training length: too_long and no_trained_token warnings (default ${DEFAULT_TRAIN.maxSeqLen})
  --fill name=Value          put Value in place of {{name}} in the examples (repeatable)
  --json                     last line: {"format", "examples", "valid", "errors", "warnings", "tokens"}
`;

/** Read a dataset file for the CLI; bad lines are printed to stderr, never silently dropped. */
export async function readDatasetFile(path: string, format?: string, fill?: Record<string, string>): Promise<LoadedDataset> {
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) throw new InvalidRequestError(`--format must be one of ${FORMATS.join(', ')}, got "${format}".`);
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new InvalidRequestError(`cannot read ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}.`);
  });
  return loadDatasetBytes(path, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), format as DatasetFormat | undefined, fill);
}

export async function runValidate(args: string[]): Promise<number> {
  const v = parse(args, { data: { type: 'string' }, format: { type: 'string' }, model: { type: 'string' }, 'max-seq-len': { type: 'string' }, fill: { type: 'string', multiple: true }, json: { type: 'boolean' } });
  if (!v.data) throw new InvalidRequestError('--data is required.');
  const data = await readDatasetFile(v.data, v.format, fillArg(v.fill));
  const maxSeqLen = number(v['max-seq-len'], '--max-seq-len', true) ?? DEFAULT_TRAIN.maxSeqLen;
  let reach: number | null = null; // max_position_embeddings: training refuses a longer maximum length
  if (v.model) {
    const files = await resolveModelArg(v.model);
    reach = parseConfig(new TextDecoder().decode(await files.read('config.json'))).maxPositions;
    addTokenStats(data, await loadTokenizer(files), maxSeqLen);
    data.report.tokens!.tokenizer = v.model;
  }
  const r = data.report;
  const tooFar = reach !== null && maxSeqLen > reach ? `--max-seq-len ${maxSeqLen} is more than this model reads (max_position_embeddings ${reach}); training refuses it. Use ${reach} or less.` : null;
  if (v.json) {
    process.stdout.write(JSON.stringify({ format: r.format, examples: r.records, valid: r.valid, errors: r.errors, warnings: r.warnings, tokens: r.tokens ?? null, formats: r.formats, max_positions: reach, placeholders: r.placeholders ?? [] }) + '\n');
  } else {
    const out = process.stdout;
    out.write(`${v.data}: ${r.format ?? 'no recognised format'}; ${r.records} examples, ${r.valid} usable, ${r.errors.length} error(s), ${r.warnings.length} warning(s)\n`);
    for (const f of r.errors) out.write(`  error   line ${f.line}: ${f.code}: ${f.message}\n`);
    for (const f of r.warnings) out.write(`  warning line ${f.line}: ${f.code}: ${f.message}\n`);
    const t = r.tokens;
    if (t) out.write(`tokens (${t.tokenizer}'s tokenizer and chat template): ${t.total} total, ${t.trained} trained; per example min ${t.min} / median ${t.median} / p95 ${t.p95} / max ${t.max}; ${t.overMax} over ${t.maxSeqLen} (${t.cut} tokens cut; ${t.untrained} left with no trained token)\n`);
  }
  if (tooFar) {
    process.stderr.write(`error: ${tooFar}\n`);
    return 1;
  }
  if (r.tokens && r.tokens.untrained === r.valid) {
    process.stderr.write(`error: no example of ${v.data} keeps a trained token within ${maxSeqLen} tokens: training refuses it. Raise --max-seq-len, or shorten the prompts.\n`);
    return 1;
  }
  if (r.valid === 0) {
    process.stderr.write(`error: ${v.data} has no usable example.\n`);
    return 1;
  }
  return 0;
}
