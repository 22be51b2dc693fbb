// Text ↔ ids through the model's own tokenizer.json (@huggingface/tokenizers) and chat prompts through
// its own Jinja chat template (@huggingface/jinja).
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { ChatTemplateError, ModelFormatError } from './errors';
import { installPythonCompat, TemplateRaised } from './jinja-python';
import { TEMPLATE_CHOICES } from '../shared/defaults';
import type { ChatMessage, TemplateChoice, TemplateVariables } from '../shared/types';

export { TEMPLATE_CHOICES };
export type { ChatMessage, TemplateChoice, TemplateVariables };


/** A message as chat templates read it: OpenAI's fields (tool_calls, tool results, reasoning_content, …) pass through. */
export interface TemplateMessage {
  readonly role: string;
  readonly content?: unknown;
}


/** ChatML without a default system message, for base models fine-tuned to chat (as Qwen and SmolLM write turns). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** A parsed chat template, its text, and where it came from (named in errors). */
interface ChatTemplate {
  template: Template;
  source: string;
  file: string;
}

let chatml: ChatTemplate | null = null;
const chatmlTemplate = (): ChatTemplate => (chatml ??= { template: new Template(CHATML_TEMPLATE), source: CHATML_TEMPLATE, file: 'the ChatML template chosen in webtune' });

/** Template variables a user may set, when the template reads them. */
const TEMPLATE_OPTIONS = ['enable_thinking'];

type Json = Record<string, unknown>;

function parseJson(bytes: Uint8Array | string, file: string): Json {
  try {
    const v = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes)) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (e) {
    throw new ModelFormatError(file, `is not a valid JSON object (${(e as Error).message}).`);
  }
}

/**
 * The Rust `Digits` pre-tokenizer splits on every Unicode numeric character (char::is_numeric: Nd, Nl, No),
 * while the JS library matches only ASCII \d. Rewrite it as the equivalent Split on \p{N}, so "½" is isolated
 * exactly as the reference tokenizer does.
 */
function fixDigits(pre: unknown): unknown {
  if (pre === null || typeof pre !== 'object') return pre;
  const p = pre as Json;
  if (p.type === 'Sequence' && Array.isArray(p.pretokenizers)) return { ...p, pretokenizers: p.pretokenizers.map(fixDigits) };
  if (p.type === 'Digits') {
    return { type: 'Split', pattern: { Regex: p.individual_digits ? '\\p{N}' : '\\p{N}+' }, behavior: 'Isolated', invert: false };
  }
  return pre;
}

/** A special token in tokenizer_config.json is a string or an AddedToken object. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

function pickTemplate(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = v.filter((t): t is { name?: unknown; template?: unknown } => t !== null && typeof t === 'object');
    const t = (named.find((x) => x.name === 'default') ?? named[0])?.template;
    if (t !== undefined && typeof t !== 'string') throw new ModelFormatError('tokenizer_config.json', '"chat_template" entries must have a string "template".');
    return t;
  }
  if (v !== undefined && v !== null) throw new ModelFormatError('tokenizer_config.json', '"chat_template" must be a string or a list of {"name", "template"}.');
  return undefined;
}

/** The largest ids in tokenizer.json: of model.vocab (a map, or Unigram's list) and of added_tokens. */
function maxIdOf(t: Json): { vocab: number; added: number } {
  let vocabMax = -1;
  let added = -1;
  const model = t.model as Json | undefined;
  const vocab = model?.vocab;
  if (Array.isArray(vocab)) vocabMax = vocab.length - 1;
  else if (vocab && typeof vocab === 'object') for (const id of Object.values(vocab as Record<string, unknown>)) if (typeof id === 'number' && id > vocabMax) vocabMax = id;
  for (const a of Array.isArray(t.added_tokens) ? t.added_tokens : []) {
    const id = (a as Json | null)?.id;
    if (typeof id === 'number' && id > added) added = id;
  }
  return { vocab: vocabMax, added };
}

/** A rendered conversation may be this many characters longer than TEMPLATE_OUTPUT_FACTOR × its own text. */
const TEMPLATE_OUTPUT_BASE = 1_000_000;
const TEMPLATE_OUTPUT_FACTOR = 4;

export class TextTokenizer {
  private readonly tok: Tokenizer;
  private readonly own: ChatTemplate | null; // the model's own chat template
  private active: ChatTemplate | null; // the one that renders chats now (per `choice`)
  private choice: TemplateChoice;
  private readonly specials: Record<string, string | undefined>;
  readonly eosIds: number[];
  /** The largest token id of tokenizer.json's vocabulary, and of its added (special) tokens. */
  readonly maxTokenId: { vocab: number; added: number };

  constructor(tokenizerJson: Json, readonly config: Json, chatTemplate?: string, generationConfig?: Json) {
    const fixed = { ...tokenizerJson, pre_tokenizer: fixDigits(tokenizerJson.pre_tokenizer) };
    try {
      this.tok = new Tokenizer(fixed, config);
    } catch (e) {
      throw new ModelFormatError('tokenizer.json', `could not be read as a tokenizer (${(e as Error).message}).`);
    }
    this.maxTokenId = maxIdOf(tokenizerJson);
    const source = chatTemplate ?? pickTemplate(config.chat_template);
    const file = chatTemplate !== undefined ? 'chat_template.jinja' : 'tokenizer_config.json';
    try {
      this.own = source ? { template: new Template(source), source, file } : null;
    } catch (e) {
      throw new ModelFormatError(file, `the chat template does not parse as Jinja (${(e as Error).message}).`);
    }
    this.active = this.own;
    this.choice = this.own ? 'model' : 'none';
    this.specials = {
      bos_token: tokenText(config.bos_token),
      eos_token: tokenText(config.eos_token),
      unk_token: tokenText(config.unk_token),
      pad_token: tokenText(config.pad_token),
    };
    const eos = new Set<number>();
    const g = generationConfig?.eos_token_id;
    for (const id of Array.isArray(g) ? g : g === undefined || g === null ? [] : [g]) if (typeof id === 'number') eos.add(id);
    const eosText = this.specials.eos_token;
    const eosId = eosText === undefined ? undefined : this.tok.token_to_id(eosText);
    if (eosId !== undefined) eos.add(eosId);
    this.eosIds = [...eos];
  }

  /** Build from the files of a model folder. */
  static fromFiles(tokenizerJson: Uint8Array, tokenizerConfig: Uint8Array, chatTemplate?: string | null, generationConfig?: Uint8Array | null): TextTokenizer {
    const gen = generationConfig ? parseJson(generationConfig, 'generation_config.json') : undefined;
    return new TextTokenizer(parseJson(tokenizerJson, 'tokenizer.json'), parseJson(tokenizerConfig, 'tokenizer_config.json'), chatTemplate ?? undefined, gen);
  }

  get hasChatTemplate(): boolean {
    return this.active !== null;
  }

  /** Whether the model ships a chat template of its own. */
  get hasOwnTemplate(): boolean {
    return this.own !== null;
  }

  get templateChoice(): TemplateChoice {
    return this.choice;
  }

  /** The variables of TEMPLATE_OPTIONS that the current template reads (e.g. Qwen3's enable_thinking). */
  get templateOptions(): string[] {
    return TEMPLATE_OPTIONS.filter((v) => this.active?.source.includes(v));
  }

  /** The chosen template's end-of-turn marker when it is not an end-of-sequence token of this vocabulary
   * (ChatML on a base model), so generation must stop at the text; null otherwise. */
  get endOfTurnText(): string | null {
    if (this.choice !== 'chatml') return null;
    const id = this.tok.token_to_id('<|im_end|>');
    return id !== undefined && this.eosIds.includes(id) ? null : '<|im_end|>';
  }

  /** Render chats with the model's own template, ChatML, or none (a base model: raw text only). */
  useTemplate(choice: TemplateChoice): void {
    this.active = choice === 'model' ? this.own : choice === 'chatml' ? chatmlTemplate() : null;
    this.choice = choice;
  }

  /** Tokenize text as is; `addSpecialTokens` applies tokenizer.json's post-processor (e.g. a BOS). */
  encode(text: string, addSpecialTokens = false): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    if (ids.length === 0) return ''; // the library refuses an empty list
    return this.tok.decode(ids, { skip_special_tokens: skipSpecialTokens });
  }

  tokenId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /** The id of tokenizer_config.json's bos/eos/pad/unk token, if it names one this vocabulary has. */
  specialId(kind: 'bos_token' | 'eos_token' | 'pad_token' | 'unk_token'): number | undefined {
    const text = this.specials[kind];
    return text === undefined ? undefined : this.tok.token_to_id(text);
  }

  /** What renders chats now, in words, for messages: the model's own template, ChatML, or none. */
  get templateName(): string {
    return this.choice === 'chatml' ? 'the ChatML template' : this.active ? "this model's chat template" : 'no chat template (a base model)';
  }

  /** Whether the active template renders tool calls (it reads tool_calls) and tool schemas (it reads tools). */
  get templateTools(): { calls: boolean; schemas: boolean } {
    const src = this.active?.source ?? '';
    return { calls: src.includes('tool_calls'), schemas: /\btools\b/.test(src) };
  }

  /** The source of the model's own chat template (not a chosen replacement), or null. */
  get ownTemplateSource(): string | null {
    return this.own?.source ?? null;
  }

  /**
   * Render messages with the model's chat template, as transformers' apply_chat_template does: `tools` and
   * `documents` are always passed (null when absent), with the special tokens, and `extra` on top
   * (enable_thinking, date_string, …). strftime_now and raise_exception are the renderer's own globals.
   */
  applyChatTemplate(messages: readonly TemplateMessage[], addGenerationPrompt = true, extra: TemplateVariables = {}): string {
    const active = this.active;
    if (!active) {
      throw new ModelFormatError(
        'tokenizer_config.json',
        this.choice === 'none' && this.own
          ? 'chat templates are switched off for this model. Give raw text (completion mode), or choose a chat template.'
          : 'the model has no chat template (no chat_template field and no chat_template.jinja): it is a base model. Give raw text (completion mode, --raw), or choose the ChatML template.',
      );
    }
    installPythonCompat();
    let out: string;
    try {
      out = active.template.render({ tools: null, documents: null, ...this.specials, ...extra, messages, add_generation_prompt: addGenerationPrompt });
    } catch (e) {
      throw new ChatTemplateError(active.file, e instanceof Error ? e.message : String(e), e instanceof TemplateRaised);
    }
    // A template wraps the conversation in markers; one that writes far more text than it was given is broken
    // or hostile, and its output would be tokenized and trained on (range() is bounded, string doubling is not).
    const given = JSON.stringify({ messages, extra }).length;
    const limit = TEMPLATE_OUTPUT_BASE + TEMPLATE_OUTPUT_FACTOR * given;
    if (out.length > limit) {
      throw new ChatTemplateError(active.file, `it wrote ${out.length.toLocaleString('en')} characters for a conversation of ${given.toLocaleString('en')}, more than the ${limit.toLocaleString('en')} a chat template may write for it`, false);
    }
    return out;
  }

  /** Chat prompt → ids. Special tokens come from the template itself, so none are added (as transformers does). */
  encodeChat(messages: readonly TemplateMessage[], addGenerationPrompt = true, extra: TemplateVariables = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, addGenerationPrompt, extra), false);
  }
}
