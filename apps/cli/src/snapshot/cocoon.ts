import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { CliError } from '../support/errors.js';

/** `EPOCH_COCOON_BINARY`, or `cocoon` on the PATH. */
export function cocoonBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.EPOCH_COCOON_BINARY || 'cocoon';
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
}

/**
 * Runs `cocoon <args>` with its stdout as the returned stream (e.g. `snapshot export NAME -o -`).
 * `wait()` resolves when it exited 0 and rejects otherwise, so a producer that failed half-way
 * is never taken for a complete export.
 */
export function cocoonReader(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(cocoonBinary(env), args, { stdio: ['ignore', 'pipe', 'inherit'], env });
  const done = exited(child).then((code) => {
    if (code !== 0)
      throw new CliError(`cocoon ${args.join(' ')} exited with ${code ?? 'a signal'}`);
  });
  done.catch(() => {});
  return { stdout: child.stdout as Readable, wait: () => done, kill: () => child.kill('SIGKILL') };
}

/**
 * Feeds `cocoon <args>` (an importer) through `produce`. If `produce` fails, the importer is
 * killed with SIGKILL *before* its stdin closes: an importer that saw EOF could take a truncated
 * stream for a complete one, a killed one imports nothing.
 */
export async function feedCocoon(
  args: string[],
  produce: (stdin: Writable) => Promise<void>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const child = spawn(cocoonBinary(env), args, { stdio: ['pipe', 'inherit', 'inherit'], env });
  const spawnFailed = once(child, 'spawn').then(
    () => undefined,
    (err: Error) => err,
  );
  const stdin = child.stdin as Writable;
  // EPIPE from an importer that gave up is reported by its exit status instead.
  stdin.on('error', () => {});
  const failed = await spawnFailed;
  if (failed) throw new CliError(`cannot run ${cocoonBinary(env)}: ${failed.message}`);
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
