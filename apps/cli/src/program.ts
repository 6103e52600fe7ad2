import { Command, CommanderError } from 'commander';
import { registerCopy } from './commands/copy.js';
import { registerGc } from './commands/gc.js';
import { registerGet } from './commands/get.js';
import { registerInspect } from './commands/inspect.js';
import { registerLogin } from './commands/login.js';
import { registerLs } from './commands/ls.js';
import { registerPull } from './commands/pull.js';
import { registerPush } from './commands/push.js';
import { registerReindex } from './commands/reindex.js';
import { registerRepo } from './commands/repo.js';
import { registerRm } from './commands/rm.js';
import { registerServe } from './commands/serve.js';
import { registerTag } from './commands/tag.js';
import { registerToken } from './commands/token.js';
import { ExitCode, exitCodeFor } from './support/errors.js';
import { explain } from './support/explain.js';
import { VERSION } from './version.js';

export { ExitCode } from './support/errors.js';

/** Builds the `epoch` command tree. Kept separate from `main` so tests can drive it in-process. */
export function buildProgram(): Command {
  const program = new Command('epoch')
    .description('Epoch: a registry for MicroVM snapshots and cloud images')
    .version(VERSION, '-v, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();

  registerServe(program);
  registerPush(program);
  registerPull(program);
  registerGet(program);
  registerLs(program);
  registerInspect(program);
  registerTag(program);
  registerRm(program);
  registerCopy(program);
  registerRepo(program);
  registerLogin(program);
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
    process.stderr.write(`epoch: ${await explain(err)}\n`);
    return exitCodeFor(err);
  }
}
