import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * The built CLI of the `@epoch/cli` dependency (its `main`, `dist/main.js`), which turbo builds
 * before this runs: `epoch serve` here, and the tests' `epoch gc` and `epoch reindex` runs.
 */
export const cli = createRequire(import.meta.url).resolve('@epoch/cli');

/**
 * Runs `argv` (a server: `epoch serve`, or a deploy file's command line) with exactly `env`, and
 * resolves with its URL from the "listening" log line it prints on stdout.
 */
export async function startListening(
  argv: string[],
  env: NodeJS.ProcessEnv,
  options: { cwd?: string } = {},
): Promise<{ child: ChildProcess; url: string }> {
  const [command = '', ...args] = argv;
  const child = spawn(command, args, {
    cwd: options.cwd,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Read stdout for the whole run, so the child never blocks on a full pipe.
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'listening' && entry.url) resolve(entry.url);
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => reject(new Error(`${command} exited (${code}) before listening`)));
  });
  return { child, url };
}

/** Stops a child with SIGTERM, if it still runs, and waits until it has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/**
 * Starts `epoch serve` in its own process with `env` over the test's own environment, and
 * resolves with its URL. It listens on a random loopback port unless `keepAddr` (the caller's
 * `EPOCH_ADDR`, to restart on the same address).
 */
export function serveProcess(
  env: NodeJS.ProcessEnv,
  options: { keepAddr?: boolean } = {},
): Promise<{ child: ChildProcess; url: string }> {
  return startListening([process.execPath, cli, 'serve'], {
    ...process.env,
    ...env,
    ...(options.keepAddr ? {} : { EPOCH_ADDR: '127.0.0.1:0' }),
    EPOCH_LOG_LEVEL: 'info',
  });
}

/** A real Epoch server (`epoch serve`, built CLI) on loopback with a fresh data directory. */
export interface EpochServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `epoch serve` (the server a puller on a node talks to) on a fresh data directory. With
 * no token created, it accepts anonymous pushes from loopback, which the fixtures use.
 */
export async function startEpoch(): Promise<EpochServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'epoch-puller-server-'));
  const { child, url } = await serveProcess({ EPOCH_DATA_DIR: dataDir });
  return {
    url,
    async stop() {
      await stopChild(child);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
