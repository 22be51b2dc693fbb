// Where @huggingface/jinja parts from Python's jinja2 in ways real chat templates notice, made to agree:
// - `x | string` on a dict or list gives Python's repr (SmolLM3 renders each tool with `tool | string`);
//   the library has no such filter for objects and throws "Unknown ObjectValue filter: string".
// - raise_exception(msg) throws a TemplateRaised error, so a template's refusal is told apart from a bug.
// - range() is bounded: at most RANGE_BUDGET items per render in all, so a template cannot spin for minutes
//   (nested range(30000) loops) or exhaust memory (range(10**9)); past it, rendering fails with the reason.
// Both go through the library's exported Environment (its runtime value classes are reached from values it
// makes). tests/chat-templates.test.ts renders real templates against Python's output and fails if this breaks.
import { Environment } from '@huggingface/jinja';

/** What a template's raise_exception(message) throws. */
export class TemplateRaised extends Error {
  override name = 'TemplateRaised';
}

interface RuntimeValue {
  type: string;
  value: unknown;
}

/** Python's repr of a str: single quotes unless the text holds ' and no ". */
function reprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + quote;
}

function reprFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
  return String(x).replace(/e([+-])(\d)$/, 'e$10$2'); // Python writes two exponent digits
}

/** Python's repr of a template runtime value. */
export function pythonRepr(v: RuntimeValue): string {
  switch (v.type) {
    case 'StringValue':
      return reprString(v.value as string);
    case 'IntegerValue':
      return String(v.value);
    case 'FloatValue':
      return reprFloat(v.value as number);
    case 'BooleanValue':
      return v.value ? 'True' : 'False';
    case 'NullValue':
    case 'UndefinedValue':
      return 'None';
    case 'ArrayValue':
      return `[${(v.value as RuntimeValue[]).map(pythonRepr).join(', ')}]`;
    case 'TupleValue': {
      const items = (v.value as RuntimeValue[]).map(pythonRepr);
      return `(${items.join(', ')}${items.length === 1 ? ',' : ''})`;
    }
    case 'ObjectValue':
      return `{${[...(v.value as Map<string, RuntimeValue>)].map(([k, x]) => `${reprString(k)}: ${pythonRepr(x)}`).join(', ')}}`;
    default:
      return String(v.value);
  }
}

/** Items all range() calls of one render may produce together. Real templates loop over messages, not ranges. */
export const RANGE_BUDGET = 100_000; // about half a second of loop in @huggingface/jinja

let installed = false;

/** Patch the renderer once per process (idempotent). */
export function installPythonCompat(): void {
  if (installed) return;
  installed = true;
  const env = new Environment();
  const object = env.set('o', {}) as unknown as RuntimeValue;
  const string = env.set('s', '') as unknown as RuntimeValue;
  const fn = env.lookupVariable('namespace') as unknown as RuntimeValue;
  const StringValue = string.constructor as new (s: string) => RuntimeValue;
  const FunctionValue = fn.constructor as new (f: (args: RuntimeValue[]) => RuntimeValue) => RuntimeValue;

  const proto = Object.getPrototypeOf(object) as object;
  const getter = Object.getOwnPropertyDescriptor(proto, 'builtins')?.get;
  if (!getter) throw new Error('@huggingface/jinja changed: ObjectValue has no builtins getter (see workers/engine/jinja-python.ts)');
  Object.defineProperty(proto, 'builtins', {
    configurable: true,
    get(this: RuntimeValue) {
      const map = getter.call(this) as Map<string, RuntimeValue>;
      if (!map.has('string')) map.set('string', new FunctionValue(() => new StringValue(pythonRepr(this))));
      return map;
    },
  });

  const set = Environment.prototype.set;
  Environment.prototype.set = function (this: Environment, name: string, value: unknown) {
    if (name === 'range') {
      let used = 0; // one Environment per render: the budget is per render
      const range = value as (start: number, stop?: number, step?: number) => number[];
      return set.call(this, name, (start: number, stop?: number, step = 1) => {
        const [a, b] = stop === undefined ? [0, start] : [start, stop];
        const n = step === 0 ? 0 : Math.max(0, Math.ceil((b - a) / step));
        used += n;
        if (!Number.isFinite(n) || used > RANGE_BUDGET) throw new Error(`range() was asked for ${n} more items, past the ${RANGE_BUDGET.toLocaleString('en')} a chat template may loop over in one conversation`);
        return range(start, stop, step);
      });
    }
    if (name !== 'raise_exception') return set.call(this, name, value);
    return set.call(this, name, (message: unknown) => {
      const text = Array.isArray(message) ? message.map((m) => String((m as RuntimeValue)?.value ?? m)).join(' ') : String(message);
      throw new TemplateRaised(text);
    });
  };
}
