import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { cocoonBinary, cocoonBinaryOrigin } from '../config.js';
import { CliError } from '../support/errors.js';

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
}

/**
 * Starts cocoon and waits until it runs. A missing or unusable binary is a CliError that says
 * where it was looked for and what to do instead (`alternative`: the flag that needs no cocoon).
 */
async function startCocoon(
  args: string[],
  stdio: ('pipe' | 'ignore' | 'inherit' | Socket)[],
  env: NodeJS.ProcessEnv,
  alternative: string,
): Promise<ChildProcess> {
  const binary = cocoonBinary(env);
  const child = spawn(binary, args, { stdio, env });
  const failed = await once(child, 'spawn').then(
    () => undefined,
    (err: NodeJS.ErrnoException) => err,
  );
  if (!failed) return child;
  const where = cocoonBinaryOrigin(env);
  if (failed.code === 'ENOENT') {
    throw new CliError(
      `cocoon not found (looked for ${where}); set EPOCH_COCOON_BINARY to the cocoon binary, or use ${alternative}`,
    );
  }
  throw new CliError(`cannot run cocoon (${where}): ${failed.message}; or use ${alternative}`);
}

/**
 * Runs `cocoon <args>` (e.g. `snapshot export NAME -o -`) with `options.stdout` as its stdout: a
 * socket (closed here once cocoon has its copy), or `pipe` for the returned `stdout` stream.
 * `wait()` resolves when it exited 0 and rejects otherwise, so a producer that failed half-way
 * is never taken for a complete export.
 */
export async function cocoonReader(
  args: string[],
  options: { alternative: string; env?: NodeJS.ProcessEnv; stdout: Socket | 'pipe' },
) {
  const env = options.env ?? process.env;
  const { stdout } = options;
  const child = await startCocoon(args, ['ignore', stdout, 'inherit'], env, options.alternative);
  // Ours would keep the reader from ever seeing the end of cocoon's output.
  if (stdout !== 'pipe') stdout.destroy();
  const done = exited(child).then((code) => {
    if (code !== 0)
      throw new CliError(`cocoon ${args.join(' ')} exited with ${code ?? 'a signal'}`);
  });
  done.catch(() => {});
  const kill = (): void => {
    child.kill('SIGKILL');
  };
  return { stdout: child.stdout, wait: () => done, kill };
}

/**
 * Feeds `cocoon <args>` (an importer) through `produce`. If `produce` fails, the importer is
 * killed with SIGKILL *before* its stdin closes: an importer that saw EOF could take a truncated
 * stream for a complete one, a killed one imports nothing.
 */
export async function feedCocoon(
  args: string[],
  produce: (stdin: Writable) => Promise<void>,
  options: { alternative: string; env?: NodeJS.ProcessEnv },
): Promise<void> {
  const env = options.env ?? process.env;
  const child = await startCocoon(args, ['pipe', 'inherit', 'inherit'], env, options.alternative);
  const stdin = child.stdin as Writable;
  // EPIPE from an importer that gave up is reported by its exit status instead.
  stdin.on('error', () => {});
  const status = exited(child);
  try {
    await produce(stdin);
  } catch (err) {
    child.kill('SIGKILL');
    stdin.destroy();
    await status.catch(() => {});
    throw err;
  }
  stdin.end();
  const code = await status;
  if (code !== 0) throw new CliError(`cocoon ${args.join(' ')} exited with ${code ?? 'a signal'}`);
}
