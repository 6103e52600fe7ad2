/**
 * A stand-in for a vk-cocoon-like node controller. A JSON file of desired VMs plays the part of a
 * Kubernetes informer: on every change, each new VM (or one whose snapshot changed) gets its
 * snapshot ensured on this node with `newPuller` before it is "created"; VMs that leave the file
 * are "deleted", and a pending ensure for them is aborted (other VMs waiting for the same
 * snapshot are not affected). Timings and bytes are logged per VM.
 *
 * Environment: EPOCH_URL (default http://127.0.0.1:4300), EPOCH_REGISTRY_TOKEN, VK_DESIRED (the
 * JSON file, default ./desired.json), VK_CACHE_DIR (default ./.vk-cache), VK_CACHE_BYTES.
 * `--once` reconciles once and exits.
 */
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { type EnsureResult, newPuller, type PullerEvent } from '@epoch/registry';

interface DesiredVm {
  name: string;
  snapshot: string;
}

const url = process.env.EPOCH_URL ?? 'http://127.0.0.1:4300';
const desiredFile = resolve(process.env.VK_DESIRED ?? 'desired.json');
const once = process.argv.includes('--once');
const token = process.env.EPOCH_REGISTRY_TOKEN;

const puller = newPuller({
  registry: url,
  cacheDir: resolve(process.env.VK_CACHE_DIR ?? '.vk-cache'),
  ...(process.env.VK_CACHE_BYTES ? { cacheBytes: Number(process.env.VK_CACHE_BYTES) } : {}),
  ...(token ? { credentials: { token } } : {}),
});

let lastProgress = 0;
puller.on('event', (event: PullerEvent) => {
  if (event.type === 'progress' && Date.now() - lastProgress > 1000) {
    lastProgress = Date.now();
    log(`  … ${event.blob.slice(0, 19)} ${mib(event.bytes)}/${mib(event.total)} MiB`);
  } else if (
    event.type === 'offline' ||
    event.type === 'blob-rejected' ||
    event.type === 'evicted'
  ) {
    log(`  ${event.type}: ${JSON.stringify({ ...event, error: undefined })}`);
  }
});

/** VMs created (by name → the snapshot they were created from) and ensures in progress. */
const running = new Map<string, string>();
const pending = new Map<string, { snapshot: string; abort: AbortController }>();

async function reconcile(): Promise<void> {
  let desired: DesiredVm[];
  try {
    desired = (JSON.parse(await readFile(desiredFile, 'utf8')) as { vms: DesiredVm[] }).vms;
  } catch (err) {
    log(`cannot read ${desiredFile}: ${(err as Error).message}`);
    return;
  }
  const wanted = new Map(desired.map((vm) => [vm.name, vm.snapshot]));
  for (const [name, job] of pending) {
    if (wanted.get(name) !== job.snapshot) {
      job.abort.abort();
      pending.delete(name);
      log(`${name}: no longer wanted as ${job.snapshot}, ensure aborted`);
    }
  }
  for (const [name, snapshot] of running) {
    if (wanted.get(name) !== snapshot) {
      running.delete(name);
      log(`${name}: deleted`);
    }
  }
  const work: Promise<void>[] = [];
  for (const [name, snapshot] of wanted) {
    if (running.get(name) === snapshot || pending.get(name)?.snapshot === snapshot) continue;
    work.push(create(name, snapshot));
  }
  await Promise.all(work);
}

async function create(name: string, snapshot: string): Promise<void> {
  const abort = new AbortController();
  pending.set(name, { snapshot, abort });
  const started = performance.now();
  try {
    const result: EnsureResult = await puller.ensureSnapshot(snapshot, { signal: abort.signal });
    const ms = (performance.now() - started).toFixed(1);
    log(
      `${name}: created from ${snapshot}@${result.digest.slice(0, 19)} in ${ms} ms ` +
        `(${result.cached ? 'cached' : 'pulled'}${result.offline ? ', OFFLINE' : ''}; ` +
        `${mib(result.bytesTransferred)} MiB transferred, ${mib(result.bytesReused)} MiB reused; ` +
        `${result.files.length} files in ${result.dir})`,
    );
    running.set(name, snapshot);
  } catch (err) {
    if (!abort.signal.aborted) log(`${name}: cannot ensure ${snapshot}: ${(err as Error).message}`);
  } finally {
    if (pending.get(name)?.abort === abort) pending.delete(name);
  }
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

log(`vk-controller: registry ${url}, desired VMs in ${desiredFile}`);
await reconcile();
if (once) {
  log(`stats ${JSON.stringify(await puller.stats())}`);
  await puller.close();
} else {
  // The directory is watched, not the file: editors replace files by renaming.
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(desiredFile), (_event, file) => {
    if (file !== basename(desiredFile)) return;
    clearTimeout(timer);
    timer = setTimeout(() => void reconcile(), 100);
  });
  process.once('SIGINT', () => {
    watcher.close();
    for (const job of pending.values()) job.abort.abort();
    void puller.close().then(() => process.exit(0));
  });
}
