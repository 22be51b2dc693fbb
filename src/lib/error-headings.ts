// Plain-language headings for the engine's named errors (the name stays for code; people read the heading).
const HEADINGS: Record<string, string> = {
  BackendUnavailableError: 'This compute backend is not available here',
  ChatTemplateError: 'The chat template failed',
  CheckpointMismatchError: 'That checkpoint belongs to another run',
  CheckpointNotFoundError: 'Checkpoint not found',
  DatasetEncodingError: 'The dataset file cannot be read as text',
  DeviceLostError: 'The GPU stopped working',
  DownloadInterruptedError: 'The download stopped',
  GgufUnsupportedError: 'GGUF export is not available for this model',
  HubAccessError: 'The model host refused or could not be reached',
  InvalidRequestError: 'That cannot be done',
  ModelFileMissingError: 'A model file is missing',
  ModelFormatError: 'A model file is not in the expected format',
  NoModelLoadedError: 'No model is loaded',
  NonFiniteError: 'Training diverged',
  ShapeMismatchError: 'The weights do not match the model’s configuration',
  SourceUnreachableError: 'The model source cannot be read',
  UnsupportedModelError: 'This model is not supported',
  WasmMemoryError: 'The model does not fit in WASM memory',
  PreflightRefused: 'This model cannot run on this device',
};

export function errorHeading(name: string): string {
  return HEADINGS[name] ?? 'Something went wrong';
}
