// Dataset files → records with their line numbers. JSONL (one object per line) is read incrementally from
// text chunks, so a large file streams with progress; JSON (one array of objects) is parsed whole, each
// element tagged with the line it starts on. UTF-8 with or without BOM; LF or CRLF; blank lines ignored.
import { DatasetEncodingError } from '../errors';

// replaced: the line holds U+FFFD; duplicateKey: a key one of its objects repeats (JSON.parse keeps the last)
export type RawRecord = ({ line: number; value: unknown; duplicateKey?: string } | { line: number; error: string }) & { replaced?: true };

/** How a dataset file's bytes are written, from its first bytes. */
export type FileEncoding = 'utf-8' | 'utf-16le' | 'utf-16be' | 'gzip';
export type TextEncodingName = Exclude<FileEncoding, 'gzip'>;

export function sniffEncoding(head: Uint8Array): FileEncoding {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0xff && head[1] === 0xfe) return 'utf-16le'; // what Windows PowerShell's > writes
  if (head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  // UTF-16 without a BOM: JSON's ASCII punctuation leaves every other byte zero.
  const n = Math.min(head.length, 64) & ~1;
  let evenZero = 0;
  let oddZero = 0;
  for (let i = 0; i < n; i += 2) {
    if (head[i] === 0) evenZero++;
    if (head[i + 1] === 0) oddZero++;
  }
  if (n >= 8 && oddZero > 0.4 * (n / 2) && evenZero === 0) return 'utf-16le';
  if (n >= 8 && evenZero > 0.4 * (n / 2) && oddZero === 0) return 'utf-16be';
  return 'utf-8';
}

/** A decoder for a dataset file's text that notes whether any bytes were not valid in its encoding. */
export class DatasetDecoder {
  private strict: TextDecoder;
  private lenient: TextDecoder | null = null;
  /** Some bytes were not valid text: they became U+FFFD. */
  lossy = false;

  constructor(readonly encoding: TextEncodingName) {
    this.strict = new TextDecoder(encoding, { fatal: true });
  }

  decode(bytes?: Uint8Array, stream = false): string {
    if (!this.lenient) {
      try {
        return this.strict.decode(bytes, { stream });
      } catch {
        this.lossy = true;
        this.lenient = new TextDecoder(this.encoding);
      }
    }
    return this.lenient.decode(bytes, { stream });
  }
}


/** Incremental JSONL reader: push text chunks, get records for every complete line. */
export class JsonlReader {
  private rest = '';
  private line = 0;
  private first = true;

  push(chunk: string, out: RawRecord[]): void {
    let text = this.rest + chunk;
    if (this.first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.first = false;
    }
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
      this.take(text.slice(start, nl), out);
      start = nl + 1;
    }
    this.rest = text.slice(start);
  }

  end(out: RawRecord[]): void {
    if (this.rest.length > 0) this.take(this.rest, out);
    this.rest = '';
  }

  private take(raw: string, out: RawRecord[]): void {
    this.line++;
    const s = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (s.trim() === '') return;
    const replaced = s.includes('\uFFFD') ? { replaced: true as const } : {};
    try {
      const value: unknown = JSON.parse(s);
      const dup = duplicateKey(s);
      out.push({ line: this.line, value, ...(dup !== null ? { duplicateKey: dup } : {}), ...replaced });
    } catch (e) {
      out.push({ line: this.line, error: (e as Error).message, ...replaced });
    }
  }
}

/** The first key that an object in this (valid) JSON text repeats, or null: JSON.parse silently keeps the last. */
export function duplicateKey(text: string): string | null {
  const stack: (Set<string> | null)[] = []; // a Set per open object, null per open array
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b) stack.push(new Set()); // {
    else if (c === 0x5b) stack.push(null); // [
    else if (c === 0x7d || c === 0x5d) stack.pop(); // } ]
    else if (c === 0x22) {
      // a string: find its end, then whether a ':' follows (a key)
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      const keys = stack[stack.length - 1];
      if (keys) {
        let k = j + 1;
        while (k < text.length && (text[k] === ' ' || text[k] === '\t' || text[k] === '\r' || text[k] === '\n')) k++;
        if (text[k] === ':') {
          const raw = text.slice(i + 1, j);
          const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
          if (keys.has(key)) return key;
          keys.add(key);
        }
      }
      i = j;
    }
  }
  return null;
}

/** A .json file holding one array of examples. Element line numbers come from a scan of the text. */
export function readJsonArray(text: string): RawRecord[] {
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let value: unknown;
  try {
    value = JSON.parse(t);
  } catch (e) {
    const line = lineOfError(t, (e as Error).message);
    // One object per line, in a file named .json: say what it is rather than "fix line 2".
    const firstLine = t.slice(0, t.indexOf('\n') >>> 0);
    let firstIsObject = false;
    try {
      const v = JSON.parse(firstLine) as unknown;
      firstIsObject = v !== null && typeof v === 'object' && !Array.isArray(v);
    } catch {
      // not JSONL either
    }
    if (firstIsObject && line === 2) return [{ line, error: 'this looks like JSONL (one example per line), not one JSON array: rename the file to .jsonl' }];
    return [{ line, error: (e as Error).message }];
  }
  if (!Array.isArray(value)) return [{ line: 1, error: 'a .json dataset must be one array of examples' }];
  const { lines, starts, end } = elementSpans(t);
  return value.map((v, i) => {
    // Each element's own text (up to the next one, or the closing bracket): its repeated keys, as for a JSONL line.
    const dup = starts[i] === undefined ? null : duplicateKey(t.slice(starts[i], starts[i + 1] ?? end));
    return { line: lines[i] ?? 1, value: v, ...(dup !== null ? { duplicateKey: dup } : {}) };
  });
}

/** The line and offset each top-level array element starts at, and the offset of the closing bracket
 * (strings and nesting skipped). */
function elementSpans(t: string): { lines: number[]; starts: number[]; end: number } {
  const out: number[] = [];
  const starts: number[] = [];
  let end = t.length;
  let line = 1;
  let depth = 0;
  let inString = false;
  let expectValue = false;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (c === '\n') line++;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') continue;
    if (depth === 1 && expectValue && c !== ']') {
      out.push(line);
      starts.push(i);
      expectValue = false;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      depth++;
      if (depth === 1) expectValue = true;
    } else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0) end = i;
    } else if (c === ',' && depth === 1) expectValue = true;
  }
  return { lines: out, starts, end };
}

function lineOfError(t: string, message: string): number {
  const m = /position (\d+)/.exec(message);
  if (!m) return 1;
  return t.slice(0, Number(m[1])).split('\n').length;
}

export function isJsonArrayFile(name: string, text: string): boolean {
  return name.toLowerCase().endsWith('.json') || /^\uFEFF?\s*\[/.test(text.slice(0, 64));
}

/** Read all records of a file's text. */
export function readRecords(name: string, text: string): RawRecord[] {
  if (isJsonArrayFile(name, text)) return readJsonArray(text);
  const out: RawRecord[] = [];
  const r = new JsonlReader();
  r.push(text, out);
  r.end(out);
  return out;
}

/** The text encoding of a dataset file from its first bytes; a compressed file is refused by name. */
export function textEncoding(name: string, head: Uint8Array): TextEncodingName {
  const encoding = sniffEncoding(head);
  if (encoding === 'gzip') throw new DatasetEncodingError(name, 'is gzip-compressed. Decompress it first (gunzip, or your archive tool), then add the .jsonl or .json inside.');
  return encoding;
}

/** A whole dataset file's bytes → its text, in the encoding its first bytes show. */
export function decodeDatasetBytes(name: string, bytes: Uint8Array): { text: string; lossy: boolean; encoding: TextEncodingName } {
  const encoding = textEncoding(name, bytes.subarray(0, 64));
  const d = new DatasetDecoder(encoding);
  const text = d.decode(bytes);
  return { text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, lossy: d.lossy, encoding };
}
