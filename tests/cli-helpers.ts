// The CLI in a child process, as a user runs it, and a folder's bytes for "nothing changed" checks.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** The CLI's entry, run through the bundling script (as `npm run -s cli --` does). */
export const CLI = ['scripts/node-run.mjs', 'workers/cli/main.ts'];

const run = promisify(execFile);

/** Run the CLI to its end; a failing run resolves with its exit code rather than throwing. */
export async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...CLI, ...args], { maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** Every file under a folder (relative path → bytes as base64). */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[p.slice(dir.length + 1)] = readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}
