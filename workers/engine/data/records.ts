// Dataset files → records with their line numbers. JSONL (one object per line) is read incrementally from
// text chunks, so a large file streams with progress; JSON (one array of objects) is parsed whole, each
// element tagged with the line it starts on. UTF-8 with or without BOM; LF or CRLF; blank lines ignored.

export type RawRecord = { line: number; value: unknown } | { line: number; error: string };

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
    try {
      out.push({ line: this.line, value: JSON.parse(s) });
    } catch (e) {
      out.push({ line: this.line, error: (e as Error).message });
    }
  }
}

/** A .json file holding one array of examples. Element line numbers come from a scan of the text. */
export function readJsonArray(text: string): RawRecord[] {
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let value: unknown;
  try {
    value = JSON.parse(t);
  } catch (e) {
    return [{ line: lineOfError(t, (e as Error).message), error: (e as Error).message }];
  }
  if (!Array.isArray(value)) return [{ line: 1, error: 'a .json dataset must be one array of examples' }];
  const lines = elementLines(t);
  return value.map((v, i) => ({ line: lines[i] ?? 1, value: v }));
}

/** The line each top-level array element starts on (strings and nesting skipped). */
function elementLines(t: string): number[] {
  const out: number[] = [];
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
      expectValue = false;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      depth++;
      if (depth === 1) expectValue = true;
    } else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expectValue = true;
  }
  return out;
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
