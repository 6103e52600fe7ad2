import { setFlagsFromString } from 'node:v8';

/**
 * The V8 settings `tuneHeapForUploads` applies, each unless node was given it.
 *
 * - `heap-growing-percent=200`: the old-space limit after a full collection is three times what
 *   survived it. Node's HTTP parser allocates a fresh Buffer for every socket read of a request
 *   body (64 KiB; nodejs/node#52176 would let a pool be used), and V8 counts those buffers
 *   against the old-space limit until a young-generation collection frees them. With V8's
 *   adaptive factor the limit can settle barely above the live heap, and then that swing of
 *   garbage buffers starts a full mark-compact every ~100 ms for as long as uploads run: measured
 *   at a third of the server's CPU and half its upload throughput, at random from run to run.
 * - `semi-space-growth-factor=1`: the young generation stays at its initial size instead of
 *   growing to 2 × 16 MiB under the allocation rate of uploads. Young collections get more
 *   frequent and stay cheap (the buffers are external memory, not heap), and the server's peak
 *   RSS in bench/server.mjs is ~30 MiB lower with the same throughput.
 */
const SETTINGS: Record<string, number> = {
  'heap-growing-percent': 200,
  'semi-space-growth-factor': 1,
};

/**
 * Tunes V8's heap for a process whose job is streaming uploads (see `SETTINGS`). Call once, early,
 * from the process that serves (`epoch serve` does); a library embedding the server keeps its
 * own settings. A setting given to node (on the command line or in `NODE_OPTIONS`) wins. Returns
 * the settings applied.
 */
export function tuneHeapForUploads(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].map((arg) => arg.replaceAll('_', '-'));
  const applied: string[] = [];
  for (const [name, value] of Object.entries(SETTINGS)) {
    if (given.some((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`))) continue;
    setFlagsFromString(`--${name}=${value}`);
    applied.push(`--${name}=${value}`);
  }
  return applied;
}
