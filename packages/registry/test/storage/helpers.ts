import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

export const MiB = 1024 * 1024;

/** Reads a stream to the end into one buffer (small objects only). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** The sha256 and length of a stream's bytes, without holding them. */
export async function digestOf(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const TEMPLATE = randomBytes(4 * MiB);

/**
 * `size` pseudo-random bytes generated on the fly (never held in memory), in chunks of `chunk`
 * bytes (deliberately not a power of two, so writes straddle part and batch boundaries). The
 * digest resolves once the stream has been read to the end.
 */
export function generated(
  size: number,
  options: { seed?: number; chunk?: number } = {},
): { stream: Readable; digest: Promise<string> } {
  const chunk = Math.min(options.chunk ?? MiB + 13, TEMPLATE.length);
  const seed = options.seed ?? 1;
  const hash = createHash('sha256');
  let sent = 0;
  let counter = 0;
  let resolveDigest: (hex: string) => void = () => {};
  const digest = new Promise<string>((resolve) => {
    resolveDigest = resolve;
  });
  const stream = new Readable({
    highWaterMark: 2 * MiB,
    read() {
      if (sent >= size) {
        resolveDigest(hash.digest('hex'));
        this.push(null);
        return;
      }
      const n = Math.min(chunk, size - sent);
      const buf = Buffer.allocUnsafe(n);
      const start = (counter * 7919 + seed * 104729) % (TEMPLATE.length - n + 1);
      TEMPLATE.copy(buf, 0, start, start + n);
      if (n >= 8) {
        buf.writeUInt32LE(counter, 0);
        buf.writeUInt32LE(seed, 4);
      }
      counter++;
      sent += n;
      hash.update(buf);
      this.push(buf);
    },
  });
  return { stream, digest };
}

/** The same bytes as `generated(size, options)`, as one buffer (for small expected values). */
export async function generatedBytes(
  size: number,
  options: { seed?: number; chunk?: number } = {},
): Promise<Buffer> {
  return readAll(generated(size, options).stream);
}

/** A stream that yields `bytes` in the given chunks and then fails. */
export function failingStream(
  chunks: Uint8Array[],
  error = new Error('client went away'),
): Readable {
  let i = 0;
  return new Readable({
    read() {
      const next = chunks[i++];
      if (next) this.push(next);
      else this.destroy(error);
    },
  });
}

/**
 * Samples this process's RSS every 20 ms while `fn` runs and returns the peak growth over the
 * level measured just before.
 */
export async function peakRssGrowth<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; growth: number }> {
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, growth: peak - baseline };
  } finally {
    clearInterval(timer);
  }
}
