// Generates the tiny test models (deterministic) before any test file runs.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['scripts/node-run.mjs', 'scripts/make-tiny-models.ts'], { stdio: 'inherit' });
}
