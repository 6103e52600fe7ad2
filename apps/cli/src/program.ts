import { Command, CommanderError } from 'commander';
import { registerGc } from './commands/gc.js';
import { registerReindex } from './commands/reindex.js';
import { registerServe } from './commands/serve.js';
import { registerToken } from './commands/token.js';
import { VERSION } from './version.js';

/** Exit codes shared by every command. */
export const ExitCode = { ok: 0, failure: 1, notFound: 2, usage: 64 } as const;

/** Builds the `epoch` command tree. Kept separate from `main` so tests can drive it in-process. */
export function buildProgram(): Command {
  const program = new Command('epoch')
    .description('Epoch: a registry for MicroVM snapshots and cloud images')
    .version(VERSION, '-v, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();

  registerServe(program);
  registerReindex(program);
  registerToken(program);
  registerGc(program);

  program
    .command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(`epoch ${VERSION}\n`);
    });

  return program;
}

/** Runs the CLI and returns the process exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    process.stderr.write(`epoch: ${err instanceof Error ? err.message : String(err)}\n`);
    return ExitCode.failure;
  }
}
