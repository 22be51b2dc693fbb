// How much of the origin's storage quota is used, and whether the browser agreed to keep it.
export class StorageState {
  usage = $state<number | null>(null);
  quota = $state<number | null>(null);
  persisted = $state<boolean | null>(null);
  /** Set once the user asked and the browser answered, so the page can say what it answered. */
  asked = $state(false);

  async refresh(): Promise<void> {
    const s = navigator.storage;
    if (!s?.estimate) return;
    const e = await s.estimate();
    this.usage = e.usage ?? null;
    this.quota = e.quota ?? null;
    this.persisted = (await s.persisted?.()) ?? null;
  }

  /** Ask the browser not to evict our data under pressure. It may refuse; that is reported, not an error. */
  async requestPersistence(): Promise<void> {
    this.persisted = (await navigator.storage?.persist?.()) ?? false;
    this.asked = true;
  }
}
