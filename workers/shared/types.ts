// The data that crosses between the UI, the worker and Node hosts: requests, results, events, records.
// Types only, no tfjs and no engine code: src/ imports from here (and from defaults.ts, api.ts), never from
// the engine's internals. Each type is defined here once; the engine imports it.
import type { WeightChoice, WeightDecision, WeightFormat } from './weights';
import type { ARCHITECTURES, FORMATS, TRAIN_METHODS, GGUF_TYPES, LINEAR_MODULES, MERGED_DTYPES, TEMPLATE_CHOICES, ERROR_CODES, WARNING_CODES } from './defaults';

// ── The model ────────────────────────────────────────────────────────────────────────────────────────
export type Architecture = (typeof ARCHITECTURES)[number];
export type GgufType = (typeof GGUF_TYPES)[number];
export type MergedDtype = (typeof MERGED_DTYPES)[number];
/** One of the seven linear modules of a block, by its checkpoint name. */
export type LinearModule = (typeof LINEAR_MODULES)[number];

/** Rotary frequency scaling, as transformers' ROPE_INIT_FUNCTIONS name them. */
export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number } // every inverse frequency divided by factor
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export interface RopeSpec {
  theta: number; // base of the inverse frequencies θ^(−2j/D)
  scaling: RopeScaling;
}

/** Which keys a query may see: all earlier ones, or only the last `slidingWindow` positions. */
export type LayerType = 'full' | 'sliding';

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number; // C
  intermediateSize: number; // MLP width
  numLayers: number;
  numHeads: number; // H, query heads
  numKvHeads: number; // KVH, key/value heads (grouped-query attention when < H)
  headDim: number; // D
  rmsNormEps: number;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  qkvBias: boolean; // Qwen2 always; the others when attention_bias
  oBias: boolean; // attention_bias also biases o_proj (not in Qwen2)
  qkNorm: boolean; // Qwen3, Gemma 3: RMSNorm over each head's D of q and k, before the rotation
  gemmaNorms: boolean; // Gemma 3: RMSNorm is x̂·(1 + w); four norms per block (post-attention and post-MLP on the branch)
  activation: 'silu' | 'gelu_tanh'; // the MLP gate's activation
  embedScale: number; // embeddings are multiplied by this (Gemma: √C; others 1)
  attnScale: number; // q·k is multiplied by this (D^−½; Gemma: query_pre_attn_scalar^−½)
  attnSoftcap: number | null; // scores → cap·tanh(scores/cap) when set
  finalSoftcap: number | null; // logits → cap·tanh(logits/cap) when set
  slidingWindow: number | null; // sliding layers: a query at q sees keys k with q − k < slidingWindow
  layerTypes: LayerType[]; // one per layer
  rope: Record<LayerType, RopeSpec>; // the rotation full and sliding layers use
}

export type BackendName = 'webgpu' | 'wasm' | 'cpu';
export type BackendPreference = BackendName | 'auto';

export interface BackendInfo {
  name: BackendName;
  reason: string;
  adapter?: string; // the GPU adapter's description, for WebGPU
  threads?: number; // WASM: the threads its products run on (1 without cross-origin isolation)
}

// ── Where models come from ───────────────────────────────────────────────────────────────────────────
/** What the UI (or CLI) names as a model. Structured-cloneable, so it crosses the worker boundary. */
export type ModelSource =
  | { kind: 'hub'; repo: string; revision?: string; hub?: HubAccess } // <endpoint>/<repo>/resolve/<revision>/<file>
  | { kind: 'url'; url: string } // any http(s) base URL of a model folder
  | { kind: 'files'; files: File[] } // a folder dropped in the browser
  | { kind: 'demo' }; // the built-in untrained demo model, served with the app

export interface FileProgress {
  file: string;
  loaded: number; // bytes so far; never decreases
  total: number | null; // bytes expected when known
  cached: boolean; // served from the local cache, no network
}

/** Which Hub to ask (a mirror's address, as HF_ENDPOINT) and the access token for it (gated and private repos). */
export interface HubAccess {
  endpoint?: string; // default https://huggingface.co
  token?: string; // sent as Authorization: Bearer, to the endpoint's origin only
}

export type LoadProgress =
  | ({ stage: 'file' } & FileProgress) // bytes of one file arriving
  | { stage: 'tensors'; loaded: number; total: number } // weights uploaded to the backend
  | { stage: 'warning'; message: string }; // something the user should know that did not stop the load

export interface LoadOptions {
  backend?: BackendPreference; // default 'auto': hardware WebGPU, else WASM, else cpu
  /** Largest buffer one vocabulary block may take; default: the WebGPU device's binding limit, 128 MiB on WASM, no limit on cpu. */
  vocabBlockBytes?: number;
  /** How to hold the frozen projections, embedding and LM head (workers/shared/weights.ts): float32, 16 bits, int8
   * or int4, unpacked to float32 inside each product. Default 'auto': float32 where it fits (on WebGPU always: a page
   * is not told the GPU's memory), else the most precise packed format that does. */
  weights?: WeightChoice;
}

export interface ModelInfo {
  id: string;
  config: ModelConfig;
  parameters: number;
  backend: BackendInfo;
  hasChatTemplate: boolean; // a template renders chats now (the model's own or the one chosen)
  chatTemplate: {
    choice: TemplateChoice; // 'model' (the default), 'chatml' or 'none'
    own: boolean; // the model ships a template
    options: string[]; // variables the template reads that a request may set (e.g. enable_thinking)
  };
  eosIds: number[];
  tensorBytes: number;
  weights: WeightDecision; // how the frozen weights are held, and why (LoadOptions.weights made concrete)
}

/** Only config.json, read before any weights: enough to estimate memory. */
export interface ModelSummary {
  parameters: number;
  vocabSize: number;
  hiddenSize: number;
  architecture: string;
}

export interface CachedModel {
  base: string; // folder URL, e.g. https://huggingface.co/<repo>/resolve/main
  files: number;
  bytes: number;
}

// ── Chat and generation ──────────────────────────────────────────────────────────────────────────────
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Variables a template may read beyond messages, as transformers passes them (tools, documents, enable_thinking, …). */
export type TemplateVariables = Record<string, unknown>;

/** Which chat template renders conversations: the model's own (the default), plain ChatML, or none (raw text only). */
export type TemplateChoice = (typeof TEMPLATE_CHOICES)[number];

/** Each one optional; the defaults and their reasons are DEFAULT_GENERATE's. */
export interface GenerateOptions {
  maxNewTokens?: number;
  temperature?: number; // 0 = greedy
  topK?: number; // 0 = off
  topP?: number; // 1 = off
  seed?: number;
  loraScale?: number; // 0 = the base model, 1 = the adapter as trained; per request, so two replies never race
}

export type StopReason = 'eos' | 'length' | 'stopped';

/** What to continue: a chat (rendered with the chat template, with optional template variables such as
 * enable_thinking), a raw text, or token ids. */
export type GenerateInput = { messages: readonly (ChatMessage | TrainMessage)[]; template?: TemplateVariables } | { text: string } | { ids: number[] };

export interface TokenEvent {
  id: number;
  text: string; // the new text this token completes (may be empty while a UTF-8 character is incomplete)
}

export interface GenerateResult {
  promptIds: number[];
  ids: number[]; // generated ids only
  text: string;
  stopReason: StopReason;
  prefillMs: number;
  decodeTokensPerSecond: number;
}

// ── Training ─────────────────────────────────────────────────────────────────────────────────────────
/** A tool call as chat templates read it (transformers' form): the arguments as an object. */
export interface ToolCall {
  type: 'function';
  function: { name: string; arguments: Record<string, unknown> };
  id?: string;
}

/** A function the model may call: a JSON schema of its parameters, in OpenAI's `tools` form. */
export type ToolSchema = { type: 'function'; function: { name: string; description?: string; parameters?: unknown } } & Record<string, unknown>;

/** A message of a training conversation, with the fields chat templates read under their own names. */
export interface TrainMessage {
  role: ChatMessage['role'] | 'tool';
  content: string; // '' for an assistant turn that only calls tools
  weight?: 0 | 1; // assistant messages only; 0 = shown to the model but not trained on
  tool_calls?: ToolCall[]; // assistant: the calls it makes (trained, like its text)
  reasoning_content?: string; // assistant: its reasoning, for templates that render it (Qwen3)
  tool_call_id?: string; // tool: the call it answers
  name?: string; // tool: the function that answered
}

/** A preference pair (DPO): the conversation so far, then the answer to prefer and the one not to. */
export interface PreferenceExample {
  prompt: TrainMessage[];
  chosen: TrainMessage[]; // assistant messages that continue the prompt
  rejected: TrainMessage[];
  tools?: ToolSchema[];
}

/** The one internal form every dataset format becomes. `tools`: the functions the conversation may call. */
export type Example = { messages: TrainMessage[]; tools?: ToolSchema[] } | { text: string } | PreferenceExample;

/** What a run minimizes: next-token cross-entropy on the answers (sft), or DPO's preference loss on pairs. */
export type TrainMethod = (typeof TRAIN_METHODS)[number];

export type TrainOn = 'assistant' | 'all';

/** The adapter's shape; DEFAULT_LORA gives each default its reason. */
export interface LoraConfig {
  rank: number; // r
  alpha: number; // the update is scaled by alpha/r (alpha/√r with rsLoRA)
  dropout: number; // on the adapter's input, in training only
  targets: LinearModule[]; // the linear modules that carry an adapter, in every layer
  rslora: boolean; // scale by alpha/√r instead of alpha/r
}

export type LoraTarget = LinearModule;

export type Schedule = 'cosine' | 'linear' | 'constant';

/** Training settings, separate from the architecture and the LoRA shape; DEFAULT_TRAIN gives each default its reason. */
export interface TrainConfig {
  epochs: number;
  maxSteps: number | null; // null: every epoch; a number caps the optimizer steps
  learningRate: number; // the peak, after warm-up
  batchSize: number; // examples per micro-batch
  gradAccum: number; // micro-batches per optimizer step
  maxSeqLen: number; // longer examples are truncated (and counted)
  warmupRatio: number; // the share of steps the rate rises linearly over
  schedule: Schedule; // after warm-up
  weightDecay: number; // AdamW's, decoupled
  maxGradNorm: number; // gradients are clipped to this global norm
  beta1: number;
  beta2: number;
  epsilon: number;
  valSplit: number; // the share of examples held out, when no validation set is given
  evalEvery: number; // 0: evaluate at each epoch's end only; N > 0 also every N steps
  earlyStoppingPatience: number; // 0: off; N stops after N evaluations without a better validation loss
  trainOn: TrainOn; // which tokens are trained: the assistant's answers, or all
  seed: number; // data order, split, LoRA init and dropout all follow it
  activationCheckpointing: boolean; // recompute each block in backward: far less memory for ~⅓ more compute
  method: TrainMethod; // sft on answers, dpo on preference pairs
  beta: number; // DPO: how far the tuned model may move from the base (the KL penalty's inverse strength)
  labelSmoothing: number; // DPO: the share of pairs assumed mislabelled (conservative DPO); 0 = plain DPO
}

/** What `train` records beside the adapter it writes (webtune_run.json): enough to hand the same run to
 * another trainer (export llama-factory) from the folder alone. */
export interface RunSettings {
  baseModel: string; // the id or path the run loaded
  weights?: WeightFormat; // how its frozen weights were held (absent in folders written before the formats)
  architecture: Architecture;
  template: TemplateChoice; // the chat template the examples were rendered with
  chatTemplate: string | null; // its source, when it is the model's own
  train: TrainConfig; // every setting, defaults filled in
  lora: LoraConfig;
}

export interface TrainRequest {
  examples: Example[];
  validation?: Example[]; // a separate validation set; otherwise train.valSplit of `examples` is held out
  lora?: Partial<LoraConfig>;
  train?: Partial<TrainConfig>;
  runId?: string; // checkpoints are kept per run
  resumeFrom?: string; // a checkpoint name of this run to continue from
}

export interface TrainResult extends TrainSummary {
  runId: string;
  trainExamples: number;
  valExamples: number;
  truncatedExamples: number; // examples longer than maxSeqLen, cut
  trainedTokens: number;
}

export interface StepPoint {
  step: number; // 1-based optimizer step
  epoch: number; // fractional epochs completed
  loss: number;
  lr: number;
  gradNorm: number;
  rewards?: PreferenceMetrics; // DPO runs: this step's pairs
  accuracy?: number; // SFT runs: the share of trained tokens the model predicted (argmax) right, as TRL's mean_token_accuracy
}

/** DPO's implicit rewards, β·(log π − log ref) of an answer, averaged over pairs, as TRL names them:
 * rewards/chosen, rewards/rejected, rewards/accuracies (the share of pairs where chosen > rejected), rewards/margins. */
export interface PreferenceMetrics {
  chosen: number;
  rejected: number;
  accuracy: number;
  margin: number;
}

export interface EvalResult {
  step: number;
  valLoss: number;
  perplexity: number; // DPO: of the chosen answers
  accuracy: number; // next-token accuracy; DPO: the share of pairs ranked right (rewards/accuracies)
  rewards?: PreferenceMetrics; // DPO runs: the held-out pairs
}

export type TrainEvent =
  | { type: 'steps'; points: StepPoint[]; totalSteps: number; tokensPerSecond: number; etaSeconds: number | null }
  | ({ type: 'eval' } & EvalResult)
  | { type: 'checkpoint'; meta: CheckpointMeta }
  | { type: 'status'; status: 'running' | 'paused' }
  | { type: 'warning'; message: string };

export interface TrainSummary {
  status: 'done' | 'cancelled' | 'early-stopped';
  steps: number;
  trainLoss: number | null; // last logged training loss
  valLoss: number | null; // last evaluation (or the restored best)
  bestCheckpoint: string | null;
  seconds: number;
}

export interface TrainState {
  step: number; // optimizer steps completed; data order and dropout follow from it and the seed
  adamT: number;
  bestValLoss: number | null;
  evalsWithoutImprovement: number;
}

/** What a run is: a checkpoint of it resumes only a run with the same identity, its LoRA and its schedule. */
export interface RunIdentity {
  baseModel: string; // the model's id
  configHash: string; // of its config.json as the engine reads it
  data: string; // fingerprint of the training examples as tokenized (ids and trained positions), in order
  examples: number;
}

export interface CheckpointMeta {
  name: string;
  runId: string;
  step: number;
  epoch: number; // fractional epochs completed
  trainLoss: number | null;
  valLoss: number | null;
  createdAt: string;
  baseModel: string;
  lora: LoraConfig;
  train: TrainConfig;
  state: TrainState;
  identity?: RunIdentity; // absent in checkpoints written before it was recorded
}

// ── Adapters and evaluation ──────────────────────────────────────────────────────────────────────────
export interface AdapterInfo {
  config: LoraConfig;
  parameters: number;
  warnings?: string[]; // from an import: e.g. the adapter names another base model
}

/** A PEFT folder's files by name (adapter_config.json, adapter_model.safetensors). */
export type AdapterFiles = Record<string, Uint8Array>;

/** One held-out example answered by the base model and by the tuned one. */
export interface EvalRow {
  index: number;
  prompt: string; // the last user message
  expected: string; // the reference answer (the example's last assistant message)
  base: string;
  tuned: string | null; // null without an adapter
  baseLoss: number; // mean loss over the example's trained tokens
  tunedLoss: number | null;
  // A preference pair: the rejected answer, and log π(chosen) − log π(rejected) under each model (> 0: prefers chosen)
  rejected?: string;
  baseMargin?: number;
  tunedMargin?: number | null;
}

/** Which held-out examples to answer with the base and the tuned model. */
export interface EvalRequest {
  datasetId: string;
  split?: { valSplit: number; seed: number }; // the validation part as a run with this split saw it; else the first examples
  limit: number;
  maxNewTokens: number;
  loraScale?: number; // the tuned side's LoRA scale (default 1)
}

/** How long training on a dataset would take here: its tokens × epochs ÷ tokens/s measured now. */
export interface TrainingEstimate {
  tokensPerSecond: number;
  tokens: number;
  seconds: number;
}

// ── Datasets and runs (the browser keeps them in IndexedDB) ──────────────────────────────────────────
export type DatasetFormat = (typeof FORMATS)[number];
export type ErrorCode = (typeof ERROR_CODES)[number];
export type WarningCode = (typeof WARNING_CODES)[number];

export interface Finding {
  line: number;
  code: ErrorCode | WarningCode;
  message: string;
}

export interface TokenStats {
  total: number; // tokens of all valid examples, as the model will see them (before truncation)
  trained: number; // of which are training targets (assistant tokens, or all for plain text)
  min: number;
  median: number;
  p95: number;
  max: number;
  maxSeqLen: number;
  overMax: number; // examples longer than maxSeqLen
  cut: number; // tokens that truncation removes
  untrained: number; // examples whose every trained token lies past maxSeqLen: they teach nothing
  histogram: { edges: number[]; counts: number[] }; // counts[i] examples with edges[i] ≤ tokens < edges[i+1]
  tokenizer?: string; // the model whose tokenizer and chat template counted them
}

export interface DatasetReport {
  format: DatasetFormat | null; // the file's format: the one forced, or the most common
  formats: Partial<Record<DatasetFormat, number>>; // records per detected format
  records: number; // non-blank lines (JSONL) or array elements (JSON)
  valid: number;
  errors: Finding[];
  warnings: Finding[];
  tokens?: TokenStats;
  placeholders?: string[]; // {{names}} still in the examples, which would be trained literally
}

export interface StoredDataset {
  id: string;
  name: string;
  fileName: string;
  size: number; // bytes of the original file
  createdAt: string;
  forcedFormat?: DatasetFormat; // the format the user chose; absent = detected per line
  fill?: Record<string, string>; // values the user gave for the data's {{placeholders}}, put in before training
  report: DatasetReport;
}

export interface RunRecord {
  runId: string;
  datasetId: string;
  datasetName: string;
  baseModel: string;
  weights?: WeightFormat; // how the base's frozen weights were held (absent in runs before the formats)
  createdAt: string;
  lora: LoraConfig;
  train: TrainConfig;
  status: 'running' | 'paused' | 'interrupted' | TrainSummary['status'] | 'failed';
  totalSteps: number;
  points: StepPoint[];
  evals: EvalResult[];
  error?: string;
}

export interface ParseProgress {
  bytes: number;
  total: number;
}

/** One example as the model sees it: runs of text that are trained or not, and what truncation cuts. */
export interface PreviewExample {
  line: number;
  tokens: number;
  pieces: { text: string; trained: boolean; cut: boolean }[];
  rejected?: { tokens: number; pieces: PreviewExample['pieces'] }; // a preference pair: tokens/pieces are the chosen side
}

export interface TrainOnDatasetRequest extends Omit<TrainRequest, 'examples' | 'validation'> {
  datasetId: string;
  validationDatasetId?: string;
}
