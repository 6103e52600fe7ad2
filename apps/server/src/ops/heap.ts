import { setFlagsFromString } from 'node:v8';

/** Old-space limit after each full collection: three times what survived it. */
const HEAP_GROWING_PERCENT = 200;

/**
 * Tunes V8's heap for a process whose job is streaming uploads. Call once, early, from the process
 * that serves (`epoch serve` does); a library embedding the server keeps its own settings.
 *
 * Node's HTTP parser allocates a fresh Buffer for every socket read of a request body (64 KiB;
 * nodejs/node#52176 would let a pool be used), and V8 counts those buffers against the old-space
 * limit until a young-generation collection frees them. With V8's adaptive growing factor the
 * limit can settle barely above the live heap, and then that swing of garbage buffers starts a
 * full mark-compact every ~100 ms for as long as uploads run: measured at a third of the
 * server's CPU and half its upload throughput, at random from one run to the next. A fixed factor
 * of 3 keeps the limit clear of the swing; the live heap is ~25 MiB, so it costs little memory,
 * and peak RSS in bench/server.mjs went down, not up.
 *
 * A `--heap-growing-percent` given to node (on the command line or in `NODE_OPTIONS`) wins.
 * Returns whether the setting was applied.
 */
export function tuneHeapForUploads(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): boolean {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) =>
    /^--heap[-_]growing[-_]percent\b/.test(arg),
  );
  if (given) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
