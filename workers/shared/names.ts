// How a model is named for people and files: the last segment of its id (a Hub id, a URL or a folder path).

/** "HuggingFaceTB/SmolLM2-135M-Instruct", "https://host/models/demo/" or "/data/m" → its last segment. */
export function modelName(id: string): string {
  return id.replace(/\/+$/, '').split('/').pop() || id;
}
