// A FolderSink whose files become the entries of one zip (client-zip: stored, ZIP64 past 4 GiB), streamed as
// the export writes them. The export pushes; the zip pulls; a hand-off of one item at a time between them
// means each chunk is in memory only until the zip has taken it.
import { makeZip } from 'client-zip';
import type { ByteSink, FolderSink } from '../engine/export/sink';

/** One value at a time from a producer to a consumer: put() resolves once the consumer has taken it. */
class Handoff<T> implements AsyncIterable<T> {
  private next: { value: T; taken: () => void } | null = null;
  private done = false;
  private error: unknown = null;
  private wake: (() => void) | null = null;

  put(value: T): Promise<void> {
    return new Promise((taken) => {
      this.next = { value, taken };
      this.wake?.();
    });
  }

  end(error: unknown = null): void {
    this.done = true;
    this.error = error;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (!this.next && !this.done) await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
      if (this.next) {
        const { value, taken } = this.next;
        this.next = null;
        yield value;
        taken();
        continue;
      }
      if (this.error) throw this.error;
      return;
    }
  }
}

/** `folder` takes the export's files; `zip` is the archive, every entry under `prefix/`. Call `end()` after
 * the last file, or `fail(e)` to break the archive off. */
export function zipFolder(prefix: string): { folder: FolderSink; zip: ReadableStream<Uint8Array>; end(): void; fail(e: unknown): void } {
  const files = new Handoff<{ name: string; input: AsyncIterable<Uint8Array> }>();
  let current: Handoff<Uint8Array> | null = null;
  const folder: FolderSink = {
    file: async (name) => {
      const chunks = new Handoff<Uint8Array>();
      current = chunks;
      void files.put({ name: `${prefix}/${name}`, input: chunks }); // taken when the previous entry is done
      const sink: ByteSink = {
        write: (bytes) => chunks.put(bytes),
        close: async () => chunks.end(),
      };
      return sink;
    },
  };
  return {
    folder,
    zip: makeZip(files) as ReadableStream<Uint8Array>,
    end: () => files.end(),
    fail: (e) => {
      current?.end(e);
      files.end(e);
    },
  };
}
