// Named errors. Each message says what went wrong, where (file, field, tensor), and what to do.
// Across the worker boundary comlink sends them as {name, message}; `name` survives, so the UI can branch on it.

export class WebtuneError extends Error {
  override name = 'WebtuneError'; // written out: class names do not survive minification
}

/** A file the model folder must have is not there. */
export class ModelFileMissingError extends WebtuneError {
  override name = 'ModelFileMissingError';
  constructor(readonly file: string, where: string) {
    super(`${file} is missing from ${where}. A model folder needs config.json, tokenizer.json, tokenizer_config.json and model.safetensors (or sharded model-0000N-of-0000M.safetensors with model.safetensors.index.json).`);
  }
}

/** A file is there but its contents are broken (truncated, bad JSON, header that lies). */
export class ModelFormatError extends WebtuneError {
  override name = 'ModelFormatError';
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
  }
}

/** A tensor's shape disagrees with what config.json implies. */
export class ShapeMismatchError extends WebtuneError {
  override name = 'ShapeMismatchError';
  constructor(file: string, tensor: string, expected: number[], got: number[], impliedBy = 'config.json') {
    super(`${file}: tensor ${tensor} has shape [${got.join(', ')}] but ${impliedBy} implies [${expected.join(', ')}]. The weights do not belong to ${impliedBy}; check that they come from the same model.`);
  }
}

/** config.json asks for something this engine does not implement. Refused rather than run wrong. */
export class UnsupportedModelError extends WebtuneError {
  override name = 'UnsupportedModelError';
  constructor(readonly field: string, problem: string) {
    super(`config.json field "${field}": ${problem}. webtune runs LlamaForCausalLM (Llama 2/3.x, SmolLM, TinyLlama), Qwen2ForCausalLM (Qwen2.5), Qwen3ForCausalLM and Gemma3ForCausalLM (Gemma 3 270M and 1B) models, with default, linear or llama3 rope scaling.`);
  }
}

/** A model this engine runs, but that a GGUF file cannot carry as webtune writes it. */
export class GgufUnsupportedError extends WebtuneError {
  override name = 'GgufUnsupportedError';
  constructor(problem: string) {
    super(`This model cannot be exported as GGUF: ${problem}. Export the merged model instead (a Hugging Face folder) and convert it with llama.cpp's convert_hf_to_gguf.py.`);
  }
}

/** The server answered with an HTTP error status. */
export class HubAccessError extends WebtuneError {
  override name = 'HubAccessError';
  constructor(
    readonly url: string,
    readonly status: number,
    context: { hasToken?: boolean; code?: string | null } = {},
  ) {
    super(HubAccessError.explain(url, status, context));
  }
  /** `code` is the Hub's X-Error-Code header (GatedRepo, RepoNotFound, …) when it sent one. */
  static explain(url: string, status: number, { hasToken = false, code = null }: { hasToken?: boolean; code?: string | null } = {}): string {
    const token = 'give an access token (the Hub token field in the page; HF_TOKEN in the CLI) from huggingface.co/settings/tokens';
    if (code === 'GatedRepo' || ((status === 401 || status === 403) && code !== 'RepoNotFound')) {
      const gated = code === 'GatedRepo' ? 'the model is gated' : 'the repository is private, gated, or does not exist (the Hub answers 401 for misspelled ids too)';
      const todo = hasToken
        ? "Your token was sent but does not give access: accept the licence on the model's Hub page with the account the token belongs to, and check that the token may read it"
        : `Check the id; for a gated model, accept its licence on its Hub page, then ${token}`;
      return `HTTP ${status} for ${url}: ${gated}. ${todo}.`;
    }
    if (status === 404 || code === 'RepoNotFound' || code === 'EntryNotFound' || code === 'RevisionNotFound')
      return `HTTP ${status} for ${url}: not found. Check the repository id (owner/name), its spelling and the revision.`;
    return `HTTP ${status} for ${url}: the server refused the download. Try again later or load the model from a local folder.`;
  }
}

/** The connection broke before the file arrived whole. Nothing partial is cached. */
export class DownloadInterruptedError extends WebtuneError {
  override name = 'DownloadInterruptedError';
  constructor(readonly url: string, received: number, expected: number | null, cause?: unknown) {
    const why = cause instanceof Error ? ` (${cause.message})` : '';
    super(`Download of ${url} stopped after ${received} of ${expected ?? 'unknown'} bytes${why}. Nothing partial was kept; check the connection and load again.`);
  }
}

/** A model source could not be read at all, with the cause told apart: offline, a server that answers but
 * does not allow this page to read it (CORS), or a host that cannot be reached (DNS, refused, down). */
export class SourceUnreachableError extends WebtuneError {
  override name = 'SourceUnreachableError';
  constructor(readonly url: string, readonly reason: 'offline' | 'cors' | 'unreachable', pageOrigin?: string) {
    const u = new URL(url);
    super(
      reason === 'offline'
        ? `This machine is offline, so ${u.host} cannot be reached. Connect to the network, or load a model kept for offline use.`
        : reason === 'cors'
          ? `${u.origin} answered, but does not let this page read its files: its responses have no Access-Control-Allow-Origin header allowing ${pageOrigin ?? 'this page'}. Serve the folder with CORS allowed (for example npx http-server --cors), or download the folder and drop it on the model zone.`
          : `${u.host} could not be reached: the name does not resolve, or nothing answers there. Check the address for a typo and that the server is running.`,
    );
  }
}

/** The chosen compute backend cannot start here. */
export class BackendUnavailableError extends WebtuneError {
  override name = 'BackendUnavailableError';
}

/** An operation needs a loaded model. */
export class NoModelLoadedError extends WebtuneError {
  override name = 'NoModelLoadedError';
  constructor() {
    super('No model is loaded. Load a model first.');
  }
}

/** A request's arguments are out of range or inconsistent. */
export class InvalidRequestError extends WebtuneError {
  override name = 'InvalidRequestError';
}

/** The GPU device went away (driver reset, GPU process crash, destroy()). Its buffers, weights included, are gone. */
export class DeviceLostError extends WebtuneError {
  override name = 'DeviceLostError';
  constructor(reason: string, during: 'training' | 'generation' | 'work') {
    const kept = during === 'training' ? ' Training stopped; every checkpoint saved before this is kept.' : during === 'generation' ? ' The answer stopped here.' : '';
    super(`${reason[0].toUpperCase()}${reason.slice(1)}.${kept} Load the model again to continue, on a new GPU device or on WASM; the page does not need reloading.`);
  }
}

/** The WASM backend's memory ran out (its heap is at most 4 GB, less on some devices). Its module is gone,
 * and the model with it. */
export class WasmMemoryError extends WebtuneError {
  override name = 'WasmMemoryError';
  constructor(during: 'training' | 'generation' | 'loading') {
    const what = during === 'training' ? ' Training stopped; every checkpoint saved before this is kept.' : during === 'generation' ? ' The answer stopped here.' : '';
    const fix =
      during === 'training'
        ? 'Lower the batch size or the maximum sequence length (gradient accumulation keeps the effective batch), or use a smaller model'
        : during === 'generation'
          ? 'Ask for fewer new tokens or a shorter conversation, or use a smaller model'
          : 'Use a smaller model, or a browser with WebGPU';
    super(`The WASM backend ran out of memory (its heap holds at most 4 GB, less on some devices).${what} ${fix}, then load the model again; the page does not need reloading.`);
  }
}


/** The model's chat template refused a conversation (its raise_exception) or failed while rendering it. */
export class ChatTemplateError extends WebtuneError {
  override name = 'ChatTemplateError';
  constructor(readonly file: string, problem: string, refused: boolean) {
    super(
      refused
        ? `The chat template in ${file} refused this conversation: ${problem} Change the conversation to follow that rule.`
        : `The chat template in ${file} failed while rendering this conversation (${problem}). Check the template, or train on plain text instead.`,
    );
  }
}

/** A dataset file that is not text webtune can read (compressed, say). */
export class DatasetEncodingError extends WebtuneError {
  override name = 'DatasetEncodingError';
  constructor(readonly file: string, problem: string) {
    super(`${file} ${problem}`);
  }
}

/** A checkpoint that belongs to another run (model, data, LoRA shape or schedule) was asked to resume this one. */
export class CheckpointMismatchError extends WebtuneError {
  override name = 'CheckpointMismatchError';
  /** `advice` replaces the default last sentence (how to resume) when the checkpoint is used otherwise. */
  constructor(checkpoint: string, field: string, theirs: unknown, ours: unknown, advice = 'Resume with the same model, data and settings as that run, or start a new run.') {
    const is = field.endsWith('targets') ? 'are' : 'is'; // "its LoRA targets are"
    super(`Checkpoint ${checkpoint} belongs to another run: its ${field} ${is} ${JSON.stringify(theirs)}, this run's ${is} ${JSON.stringify(ours)}. ${advice}`);
  }
}

/** A checkpoint asked for by name is not stored (every checkpoint store throws this one error). */
export class CheckpointNotFoundError extends WebtuneError {
  override name = 'CheckpointNotFoundError';
  constructor(readonly checkpoint: string, where: string, stored: string[]) {
    super(`There is no checkpoint "${checkpoint}" in ${where}. ${stored.length ? `It has: ${stored.join(', ')}.` : 'It has none.'} Choose one of those, or start a new run.`);
  }
}

/** A file could not be written because the disk (or the site's storage) is full; what was there before is kept. */
export class DiskFullError extends WebtuneError {
  override name = 'DiskFullError';
}
