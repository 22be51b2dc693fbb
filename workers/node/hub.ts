// The Hub as huggingface_hub configures it on this machine: HF_ENDPOINT (a mirror), and the access token from
// HF_TOKEN or the token file `huggingface-cli login` writes (HF_TOKEN_PATH, else $HF_HOME/token, else
// ~/.cache/huggingface/token).
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { HubAccess } from '../engine/source';

export function hubAccessFromEnv(env: NodeJS.ProcessEnv = process.env): HubAccess {
  const access: HubAccess = {};
  if (env.HF_ENDPOINT) access.endpoint = env.HF_ENDPOINT;
  const token = env.HF_TOKEN?.trim() || readToken(env);
  if (token) access.token = token;
  return access;
}

function readToken(env: NodeJS.ProcessEnv): string | undefined {
  const path = env.HF_TOKEN_PATH || join(env.HF_HOME || join(homedir(), '.cache', 'huggingface'), 'token');
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
