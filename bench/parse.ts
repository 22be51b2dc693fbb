// npm run bench:parse — parse and validate a generated 50 MB JSONL dataset (all five formats, a few bad
// lines), in Node, with the same code the worker runs.
import { loadDataset } from '../workers/engine/data/dataset';
import { JsonlReader, type RawRecord } from '../workers/engine/data/records';
import { loadRecords } from '../workers/engine/data/dataset';

const target = 50 * 1024 * 1024;
const lines: string[] = [];
let size = 0;
for (let i = 0; size < target; i++) {
  const q = `Question ${i}: what is ${i} plus ${i}? Explain step by step, please, with care. `.repeat(3);
  const a = `The answer is ${2 * i}. `.repeat(8);
  const line =
    i % 1000 === 999
      ? '{"messages": [ broken'
      : [
          JSON.stringify({ messages: [{ role: 'system', content: 'Be exact.' }, { role: 'user', content: q }, { role: 'assistant', content: a }] }),
          JSON.stringify({ instruction: q, input: '', output: a }),
          JSON.stringify({ conversations: [{ from: 'human', value: q }, { from: 'gpt', value: a }] }),
          JSON.stringify({ prompt: q, completion: a }),
          JSON.stringify({ text: q + a }),
        ][i % 5];
  lines.push(line);
  size += line.length + 1;
}
const text = lines.join('\n') + '\n';
const mb = Buffer.byteLength(text) / 2 ** 20;

let t0 = performance.now();
const whole = loadDataset('bench.jsonl', text);
const wholeMs = performance.now() - t0;

// Streamed as the worker does it: 1 MiB chunks through the incremental reader.
t0 = performance.now();
const out: RawRecord[] = [];
const reader = new JsonlReader();
for (let i = 0; i < text.length; i += 1 << 20) reader.push(text.slice(i, i + (1 << 20)), out);
reader.end(out);
const streamed = loadRecords(out);
const streamMs = performance.now() - t0;

console.log(`${mb.toFixed(1)} MiB, ${whole.report.records} lines, ${whole.report.valid} valid, ${whole.report.errors.length} errors, ${whole.report.warnings.length} warnings`);
console.log(`whole text: ${(wholeMs / 1000).toFixed(2)} s (${(mb / (wholeMs / 1000)).toFixed(0)} MiB/s); streamed in 1 MiB chunks: ${(streamMs / 1000).toFixed(2)} s; same result: ${streamed.report.valid === whole.report.valid}`);
