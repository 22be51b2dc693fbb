// Which Hub the page downloads from (huggingface.co or a mirror) and the access token for gated or private
// models. Kept in this browser's localStorage only; the engine sends the token to that Hub's origin alone.
import { DEFAULT_HUB } from '../../workers/shared/defaults';
import type { HubAccess } from './engine-client';

const KEY = 'webtune.hub';

function stored(): { endpoint: string; token: string } {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? '{}') as { endpoint?: unknown; token?: unknown };
    return { endpoint: typeof v.endpoint === 'string' && v.endpoint ? v.endpoint : DEFAULT_HUB, token: typeof v.token === 'string' ? v.token : '' };
  } catch {
    return { endpoint: DEFAULT_HUB, token: '' };
  }
}

export class HubSettings {
  #endpoint = $state(DEFAULT_HUB);
  #token = $state('');

  constructor() {
    const s = stored();
    this.#endpoint = s.endpoint;
    this.#token = s.token;
  }

  get endpoint(): string {
    return this.#endpoint;
  }
  get token(): string {
    return this.#token;
  }
  /** Why the endpoint cannot be used, or null when it is an http(s) URL. */
  get endpointProblem(): string | null {
    try {
      const u = new URL(this.#endpoint);
      return u.protocol === 'https:' || u.protocol === 'http:' ? null : 'The Hub address must start with https:// (or http:// for a local mirror).';
    } catch {
      return 'The Hub address is not a URL; write it as https://huggingface.co or your mirror’s address.';
    }
  }

  update(endpoint: string, token: string): void {
    this.#endpoint = endpoint.trim() || DEFAULT_HUB;
    this.#token = token.trim();
    try {
      if (this.#endpoint === DEFAULT_HUB && !this.#token) localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, JSON.stringify({ endpoint: this.#endpoint, token: this.#token }));
    } catch {
      // storage refused (private mode, full): the settings hold for this page only
    }
  }

  /** What the engine needs for a Hub source. */
  access(): HubAccess {
    return { endpoint: this.#endpoint, ...(this.#token ? { token: this.#token } : {}) };
  }
}

export const hubSettings = new HubSettings();
