// A conversation that asks the base model and the tuned model (the adapter at the chosen strength) the same
// thing, side by side, each streamed. Each side keeps its own history. In completion mode (base models, which
// have no chat template) each prompt is raw text that both models continue, with no history.
import { describeError, type AdapterInfo, type ChatMessage, type EngineClient, type GenerateOptions } from './engine-client';

export interface Reply {
  text: string;
  tokens: number; // generated so far; some tokens show no text (special or partial characters)
  stats?: string;
}

export interface Exchange {
  prompt: string;
  base: Reply | null; // null until generated
  tuned: Reply | null; // null when there is no adapter
}

export type ChatMode = 'chat' | 'completion';

export class ChatState {
  exchanges = $state<Exchange[]>([]);
  mode = $state<ChatMode>('chat');
  /** Qwen3-style templates: let the model think (<think> … </think>) before it answers. */
  thinking = $state(true);
  templateOptions = $state<string[]>([]);
  streaming = $state<'base' | 'tuned' | null>(null);
  error = $state<string | null>(null);
  system = $state('');
  adapter = $state<AdapterInfo | null>(null);
  loraScale = $state(1);
  options = $state<Required<Pick<GenerateOptions, 'maxNewTokens' | 'temperature' | 'topK' | 'topP' | 'seed'>>>({
    maxNewTokens: 128,
    temperature: 0,
    topK: 0,
    topP: 1,
    seed: 0,
  });
  private stopped = false;

  constructor(private readonly engine: EngineClient) {}

  async refreshAdapter(): Promise<void> {
    this.adapter = await this.engine.adapterInfo();
  }

  /** Where the tuned side's adapter came from when the page picked it itself (after a reload), for the notice. */
  picked = $state<string | null>(null);

  /** Chat with a stored checkpoint's adapter instead of the live one. */
  async useCheckpoint(runId: string, name: string): Promise<void> {
    this.picked = null;
    try {
      this.adapter = await this.engine.useCheckpoint(runId, name);
    } catch (e) {
      this.error = describeError(e).message;
    }
  }

  private history(side: 'base' | 'tuned', prompt: string): ChatMessage[] {
    const msgs: ChatMessage[] = this.system.trim() ? [{ role: 'system', content: this.system }] : [];
    for (const x of this.exchanges) {
      const reply = x[side] ?? x.base;
      if (!reply) continue;
      msgs.push({ role: 'user', content: x.prompt }, { role: 'assistant', content: reply.text });
    }
    msgs.push({ role: 'user', content: prompt });
    return msgs;
  }

  /** A newly loaded model: chat when it has a chat template, else completion (the only mode it can do). */
  modelChanged(hasChatTemplate: boolean, templateOptions: string[] = []): void {
    this.mode = hasChatTemplate ? 'chat' : 'completion';
    this.templateOptions = templateOptions;
  }

  private async answer(side: 'base' | 'tuned', messages: ChatMessage[] | string, into: Exchange): Promise<void> {
    into[side] = { text: '', tokens: 0 };
    const reply = into[side]!;
    this.streaming = side;
    // Token events come on their own message port and may trail the result: once it is in, ignore them.
    let finished = false;
    const template = this.templateOptions.includes('enable_thinking') ? { enable_thinking: this.thinking } : {};
    const input = typeof messages === 'string' ? { text: messages } : { messages: $state.snapshot(messages), template };
    // Each side's LoRA scale goes with its own request: the base side is the adapter at 0.
    const options = { ...$state.snapshot(this.options), loraScale: side === 'base' ? 0 : this.loraScale };
    const r = await this.engine.generate(input, options, (t) => {
      if (finished) return;
      reply.text += t.text;
      reply.tokens++;
    });
    finished = true;
    reply.text = r.text;
    reply.stats = `${r.ids.length} tokens · ${r.decodeTokensPerSecond.toFixed(1)} tok/s · ${r.stopReason === 'eos' ? 'finished' : r.stopReason === 'stopped' ? 'stopped' : 'length limit'}`;
  }

  async send(text: string): Promise<void> {
    if (this.streaming || !text.trim()) return;
    this.error = null;
    this.stopped = false;
    const completion = this.mode === 'completion';
    const baseMsgs = completion ? text : this.history('base', text);
    const tunedMsgs = completion ? text : this.history('tuned', text);
    this.exchanges.push({ prompt: text, base: null, tuned: null });
    const x = this.exchanges[this.exchanges.length - 1];
    try {
      if (this.adapter) await this.answer('tuned', tunedMsgs, x);
      if (!this.stopped) await this.answer('base', baseMsgs, x);
    } catch (e) {
      this.error = describeError(e).message;
    } finally {
      this.streaming = null;
    }
  }

  stop(): void {
    this.stopped = true;
    void this.engine.stop();
  }

  clear(): void {
    this.exchanges = [];
    this.error = null;
  }
}
