// webtune command line: the same engine as the browser, on Node (WASM backend by default).
//   npm run -s cli -- generate --model <dir|url|hub-id> (--prompt <text> | --prompt-ids <id,...>) [options]
import { WebtuneError } from '../engine/errors';
import { UsageError } from './args';
import { EXPORT_HELP, runExport } from './export';
import { runGenerate, GENERATE_HELP } from './generate';
import { runTrain, TRAIN_HELP } from './train';
import { runValidate, VALIDATE_HELP } from './validate';

const USAGE = `usage: npm run -s cli -- <command> [options]

commands:
  generate   continue a prompt with a model (optionally with a LoRA adapter)
  train      LoRA-fine-tune a model on a dataset and export a PEFT adapter
  validate   check a dataset file: format, line-numbered findings, token statistics
  export     the model with its adapter folded in: a Hugging Face folder (merged) or a GGUF file (gguf)
${GENERATE_HELP}${TRAIN_HELP}${VALIDATE_HELP}${EXPORT_HELP}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'generate') return runGenerate(rest);
  if (command === 'train') return runTrain(rest);
  if (command === 'validate') return runValidate(rest);
  if (command === 'export') return runExport(rest);
  throw new UsageError(`unknown command "${command}".\n${USAGE}`);
}

/** Exit once stdout and stderr have flushed: to a pipe they write asynchronously, and process.exit() drops what is
 * still queued (a 300 kB `validate --json` line was cut at 64 kB). */
function exitAfterFlush(code: number): void {
  let open = 2;
  const done = () => --open === 0 && process.exit(code);
  process.stdout.write('', done);
  process.stderr.write('', done);
}

main(process.argv.slice(2)).then(exitAfterFlush, (e: unknown) => {
  const err = e as Error;
  process.stderr.write(`error: ${err instanceof WebtuneError ? `${err.name}: ` : ''}${err.message}\n`);
  if (!(err instanceof WebtuneError) && err.stack) process.stderr.write(err.stack + '\n');
  exitAfterFlush(1);
});
