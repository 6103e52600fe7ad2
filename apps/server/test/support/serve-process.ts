import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../../cli/dist/main.js', import.meta.url));

/** Starts `epoch serve` in its own process and resolves with its URL from the "listening" log. */
export async function serveProcess(
  env: NodeJS.ProcessEnv,
  options: { keepAddr?: boolean } = {},
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [cli, 'serve'], {
    env: {
      ...process.env,
      ...env,
      // A random port unless the caller needs a fixed one (to restart on the same address).
      ...(options.keepAddr ? {} : { EPOCH_ADDR: '127.0.0.1:0' }),
      EPOCH_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Keep reading stdout for the whole run, so the child never blocks on a full pipe.
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'listening' && entry.url) resolve(entry.url);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening`)));
  });
  return { child, url };
}
