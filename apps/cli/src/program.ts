import { Command, CommanderError } from 'commander';
import { ExitCode, exitCodeFor } from './support/errors.js';
import { explain } from './support/explain.js';
import { VERSION } from './version.js';

export { ExitCode } from './support/errors.js';

type Register = (program: Command) => void;

/**
 * The commands, in the order `epoch --help` lists them, each loaded only when it is needed: a
 * command's module brings its dependencies (the server, the index's database drivers), and
 * loading all of them took half a second before a `push` or `pull` could start.
 */
const COMMANDS: { names: readonly string[]; load: () => Promise<Register> }[] = [
  { names: ['serve'], load: async () => (await import('./commands/serve.js')).registerServe },
  { names: ['push'], load: async () => (await import('./commands/push.js')).registerPush },
  { names: ['pull'], load: async () => (await import('./commands/pull.js')).registerPull },
  { names: ['get'], load: async () => (await import('./commands/get.js')).registerGet },
  { names: ['ls', 'list'], load: async () => (await import('./commands/ls.js')).registerLs },
  {
    names: ['inspect'],
    load: async () => (await import('./commands/inspect.js')).registerInspect,
  },
  { names: ['tag'], load: async () => (await import('./commands/tag.js')).registerTag },
  { names: ['rm'], load: async () => (await import('./commands/rm.js')).registerRm },
  { names: ['copy', 'cp'], load: async () => (await import('./commands/copy.js')).registerCopy },
  { names: ['repo'], load: async () => (await import('./commands/repo.js')).registerRepo },
  {
    names: ['login', 'logout'],
    load: async () => (await import('./commands/login.js')).registerLogin,
  },
  {
    names: ['reindex'],
    load: async () => (await import('./commands/reindex.js')).registerReindex,
  },
  { names: ['token'], load: async () => (await import('./commands/token.js')).registerToken },
  { names: ['gc'], load: async () => (await import('./commands/gc.js')).registerGc },
];

/**
 * Builds the `epoch` command tree for `argv`: only the command named right after `epoch` (its
 * `--help` included), every command otherwise (`epoch --help`, `epoch help`, a typo).
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('epoch')
    .description('Epoch: a registry for MicroVM snapshots and cloud images')
    .version(VERSION, '-v, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();

  // Only a command name right after `epoch`: with an option first (`epoch --help push`),
  // commander shows the whole program's help, which must list every command.
  const named = argv[2];
  const one = COMMANDS.find((c) => named !== undefined && c.names.includes(named));
  for (const command of one ? [one] : COMMANDS) (await command.load())(program);

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
  const program = await buildProgram(argv);
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
