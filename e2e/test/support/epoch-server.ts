import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The built CLI of the `@epoch/cli` dependency (its `main`), which turbo builds before this runs. */
const cli = createRequire(import.meta.url).resolve('@epoch/cli');

/** A real Epoch server (`epoch serve`, built CLI) on loopback with a fresh data directory. */
export interface EpochServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `epoch serve` in its own process (the server a puller on a node talks to) and
 * resolves with its URL from the "listening" log line. With no token created, it accepts
 * anonymous pushes from loopback, which the fixtures use.
 */
export async function startEpoch(): Promise<EpochServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'epoch-puller-server-'));
  const child: ChildProcess = spawn(process.execPath, [cli, 'serve'], {
    env: {
      ...process.env,
      EPOCH_ADDR: '127.0.0.1:0',
      EPOCH_DATA_DIR: dataDir,
      EPOCH_LOG_LEVEL: 'info',
    },
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
    child.once('exit', (code) =>
      reject(new Error(`epoch serve exited (${code}) before listening`)),
    );
  });
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
