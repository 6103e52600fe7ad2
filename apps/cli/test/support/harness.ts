import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type RunningServer, startServer } from '@epoch/server';

export { fakeCocoon } from '@epoch/test-support/fake-cocoon';

export const main = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** The outcome of one `epoch` run. */
export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the built `epoch` binary as a child process. */
export function epoch(
  args: string[],
  env: NodeJS.ProcessEnv,
  stdin?: Buffer | NodeJS.ReadableStream,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out), stderr }),
    );
    if (stdin === undefined) child.stdin.end();
    else if (Buffer.isBuffer(stdin)) child.stdin.end(stdin);
    else stdin.pipe(child.stdin);
  });
}

/** A temporary directory that is removed by `cleanup`. */
export async function tempDir(prefix: string, cleanups: (() => Promise<void>)[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A real Epoch server (filesystem + SQLite) on a random loopback port, with `extra` env. */
export async function startEpoch(
  cleanups: (() => Promise<void>)[],
  extra: Record<string, string> = {},
): Promise<RunningServer> {
  const dataDir = await tempDir('epoch-cli-server-', cleanups);
  await writeFile(join(dataDir, 's3.env'), '');
  const env = {
    EPOCH_ADDR: '127.0.0.1:0',
    EPOCH_DATA_DIR: dataDir,
    EPOCH_LOG_LEVEL: 'silent',
    EPOCH_S3_ENV_FILE: join(dataDir, 's3.env'),
    ...extra,
  };
  const server = await startServer(loadConfig(env), { env });
  cleanups.unshift(() => server.close(1000));
  return server;
}

/** A fake cocoon root with the given snapshot files (written as they are). */
export async function cocoonRoot(
  cleanups: (() => Promise<void>)[],
  snapshots: Record<
    string,
    Record<string, Buffer | { size: number; data: [number, Buffer][] }>
  > = {},
): Promise<string> {
  const root = await tempDir('fake-cocoon-', cleanups);
  for (const [name, files] of Object.entries(snapshots)) {
    const dir = join(root, 'snapshots', name);
    await mkdir(dir, { recursive: true });
    for (const [file, content] of Object.entries(files)) {
      if (Buffer.isBuffer(content)) {
        await writeFile(join(dir, file), content);
        continue;
      }
      const { open } = await import('node:fs/promises');
      const fh = await open(join(dir, file), 'w');
      await fh.truncate(content.size);
      for (const [offset, bytes] of content.data) await fh.write(bytes, 0, bytes.length, offset);
      await fh.close();
    }
  }
  return root;
}

/** The fake cocoon's run log: one `<pid> start|ok|failed …` line per event. */
export async function cocoonLog(root: string): Promise<string[]> {
  try {
    return (await readFile(join(root, 'log'), 'utf8')).trim().split('\n');
  } catch {
    return [];
  }
}
