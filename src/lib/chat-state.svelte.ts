// A conversation with the loaded model, streamed token by token.
import { describeError, type ChatMessage, type EngineClient, type GenerateOptions } from './engine-client';

export interface Turn extends ChatMessage {
  stats?: string;
}

export class ChatState {
  turns = $state<Turn[]>([]);
  streaming = $state(false);
  error = $state<string | null>(null);
  system = $state('');
  options = $state<Required<Pick<GenerateOptions, 'maxNewTokens' | 'temperature' | 'topK' | 'topP' | 'seed'>>>({
    maxNewTokens: 128,
    temperature: 0,
    topK: 0,
    topP: 1,
    seed: 0,
  });

  constructor(private readonly engine: EngineClient) {}

  async send(text: string): Promise<void> {
    if (this.streaming || !text.trim()) return;
    this.error = null;
    this.turns.push({ role: 'user', content: text });
    const messages: ChatMessage[] = [
      ...(this.system.trim() ? [{ role: 'system' as const, content: this.system }] : []),
      ...this.turns.map(({ role, content }) => ({ role, content })),
    ];
    this.turns.push({ role: 'assistant', content: '' });
    const reply = this.turns[this.turns.length - 1];
    this.streaming = true;
    try {
      const r = await this.engine.generate({ messages }, { ...this.options }, (t) => {
        reply.content += t.text;
      });
      reply.content = r.text;
      reply.stats = `${r.ids.length} tokens · ${r.decodeTokensPerSecond.toFixed(1)} tok/s · ${r.stopReason === 'eos' ? 'finished' : r.stopReason === 'stopped' ? 'stopped' : 'length limit'}`;
    } catch (e) {
      this.error = describeError(e).message;
      if (!reply.content) this.turns.splice(this.turns.length - 2, 2);
    } finally {
      this.streaming = false;
    }
  }

  stop(): void {
    void this.engine.stop();
  }

  clear(): void {
    this.turns = [];
    this.error = null;
  }
}
