import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ReadableStream } from 'node:stream/web';
import { describe, expect, it } from 'vitest';
import {
  ContentSizeMismatchError,
  copyVerified,
  Digester,
  DigestMismatchError,
  digestOf,
  hashStream,
  OciValidationError,
  SizeMismatchError,
  verifyingStream,
} from '../src/index.js';

const text = new TextEncoder();

function chunksOf(...parts: string[]): Uint8Array[] {
  return parts.map((part) => text.encode(part));
}

/** A sink that records what it got and whether it was destroyed. */
class Sink extends Writable {
  readonly received: Uint8Array[] = [];
  bytes = 0;

  override _write(chunk: Uint8Array, _encoding: BufferEncoding, callback: () => void): void {
    this.received.push(chunk);
    this.bytes += chunk.byteLength;
    callback();
  }

  get text(): string {
    return Buffer.concat(this.received).toString('utf8');
  }
}

function webStreamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let index = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[index++];
      if (chunk === undefined) controller.close();
      else controller.enqueue(chunk);
    },
  });
}

/**
 * A deterministic pseudo-random byte generator producing `total` bytes in `chunkSize` pieces and
 * counting how many bytes it has handed out. With `pool`, it cycles through that many buffers,
 * overwriting a chunk `pool` chunks after handing it out: a consumer that holds on to more
 * chunks than that before hashing them sees corrupted data and gets a different digest.
 */
function generated(total: number, chunkSize: number, pool = 0) {
  const state = { produced: 0 };
  const buffers = Array.from({ length: pool }, () => Buffer.alloc(chunkSize));
  function* chunks(): Generator<Uint8Array> {
    let seed = 0x9e3779b9;
    let n = 0;
    for (let offset = 0; offset < total; offset += chunkSize) {
      const length = Math.min(chunkSize, total - offset);
      const buffer = pool > 0 ? buffers[n++ % pool] : undefined;
      const chunk = buffer ? buffer.subarray(0, length) : Buffer.allocUnsafe(length);
      for (let i = 0; i < chunk.length; i += 4) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        chunk.writeUInt32LE(seed, i);
      }
      state.produced += chunk.length;
      yield chunk;
    }
  }
  return { state, chunks };
}

function referenceDigest(total: number, chunkSize: number): string {
  const digester = new Digester();
  for (const chunk of generated(total, chunkSize).chunks()) digester.update(chunk);
  return digester.digest();
}

describe('verifyingStream', () => {
  const payload = 'hello, registry';
  const digest = digestOf(payload);

  async function run(chunks: Uint8Array[], expected: { digest: string; size?: number }) {
    const sink = new Sink();
    const verifier = verifyingStream(expected);
    await pipeline(Readable.from(chunks), verifier, sink);
    return { sink, verifier };
  }

  it('passes matching bytes through and reports digest and size', async () => {
    const { sink, verifier } = await run(chunksOf('hello, ', 'reg', 'istry'), {
      digest,
      size: payload.length,
    });
    expect(sink.text).toBe(payload);
    expect(verifier.result).toEqual({ digest, size: payload.length });
  });

  it('works without an expected size', async () => {
    const { verifier } = await run(chunksOf(payload), { digest });
    expect(verifier.result?.size).toBe(payload.length);
  });

  it('verifies an empty stream', async () => {
    const { verifier } = await run([], { digest: digestOf(''), size: 0 });
    expect(verifier.result).toEqual({ digest: digestOf(''), size: 0 });
  });

  it('uses the algorithm of the expected digest', async () => {
    const sha512 = digestOf(payload, 'sha512');
    const { verifier } = await run(chunksOf(payload), { digest: sha512 });
    expect(verifier.result?.digest).toBe(sha512);
  });

  it('fails on a wrong digest', async () => {
    const wrong = digestOf('something else');
    const error = await run(chunksOf(payload), { digest: wrong }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect(error).toMatchObject({ expected: wrong, actual: digest, code: 'DIGEST_INVALID' });
  });

  it('fails on short input even when the digest matches', async () => {
    const error = await run(chunksOf(payload), { digest, size: payload.length + 1 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ContentSizeMismatchError);
    expect(error).toMatchObject({ expected: payload.length + 1, actual: payload.length });
  });

  it('fails on long input as soon as the size is exceeded', async () => {
    const sink = new Sink();
    const verifier = verifyingStream({ digest, size: 4 });
    let pulled = 0;
    // The source reads ahead only as far as its own buffer, one chunk here. Its default size
    // (16 KiB on Node 20, 64 KiB from Node 22) would otherwise set how much is pulled in any case.
    const source = new Readable({
      highWaterMark: 2,
      read() {
        pulled += 2;
        // An endless source: only the size check can stop this pipeline.
        this.push(text.encode('xx'));
      },
    });
    const error = await pipeline(source, verifier, sink).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SizeMismatchError);
    expect(error).toMatchObject({ expected: 4, actual: 6, code: 'SIZE_INVALID' });
    expect(sink.bytes).toBeLessThanOrEqual(4);
    // Pulled: the 4 bytes allowed, the chunk that exceeds them, one more read ahead.
    expect(pulled).toBeLessThanOrEqual(8);
    // Without the early check this pipeline never ends: fail fast instead of at the suite timeout.
  }, 5_000);

  it('exports SizeMismatchError as the same class as ContentSizeMismatchError', () => {
    expect(SizeMismatchError).toBe(ContentSizeMismatchError);
  });

  it.each([
    [{ digest: 'sha256:nope' }, 'DIGEST_INVALID'],
    [{ digest: `md5:${'a'.repeat(32)}` }, 'DIGEST_INVALID'],
    [{ digest: digestOf(''), size: -1 }, 'SIZE_INVALID'],
    [{ digest: digestOf(''), size: 1.5 }, 'SIZE_INVALID'],
    [{ digest: digestOf(''), size: Number.NaN }, 'SIZE_INVALID'],
  ])('refuses a malformed expectation %j', (expected, code) => {
    try {
      verifyingStream(expected);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(OciValidationError);
      expect((error as OciValidationError).code).toBe(code);
    }
  });

  it('refuses string chunks rather than guessing their bytes', async () => {
    const source = Readable.from(['hello'], { objectMode: false });
    source.setEncoding('utf8');
    const error = await pipeline(
      source,
      verifyingStream({ digest: digestOf('hello') }),
      new Sink(),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
  });
});

describe('copyVerified', () => {
  const payload = 'the quick brown fox';
  const digest = digestOf(payload);

  it('copies a Node stream and resolves with digest and size', async () => {
    const sink = new Sink();
    const result = await copyVerified(Readable.from(chunksOf('the quick ', 'brown fox')), sink, {
      digest,
      size: payload.length,
    });
    expect(result).toEqual({ digest, size: payload.length });
    expect(sink.text).toBe(payload);
    expect(sink.writableFinished).toBe(true);
  });

  it('copies a web ReadableStream', async () => {
    const sink = new Sink();
    const result = await copyVerified(webStreamOf(chunksOf('the ', 'quick brown fox')), sink, {
      digest,
    });
    expect(result).toEqual({ digest, size: payload.length });
    expect(sink.text).toBe(payload);
  });

  it('rejects and destroys the destination on a digest mismatch', async () => {
    const sink = new Sink();
    const error = await copyVerified(Readable.from(chunksOf(payload)), sink, {
      digest: digestOf('other'),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect(sink.destroyed).toBe(true);
    expect(sink.writableFinished).toBe(false);
  });

  it('rejects and destroys the destination on a size mismatch from a web stream', async () => {
    const sink = new Sink();
    const error = await copyVerified(webStreamOf(chunksOf(payload)), sink, {
      digest,
      size: payload.length - 1,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ContentSizeMismatchError);
    expect(sink.destroyed).toBe(true);
  });

  it('rejects and destroys the destination when the source fails', async () => {
    const sink = new Sink();
    const source = new PassThrough();
    const copying = copyVerified(source, sink, { digest });
    source.write(text.encode('partial'));
    source.destroy(new Error('connection reset'));
    await expect(copying).rejects.toThrow('connection reset');
    expect(sink.destroyed).toBe(true);
  });

  it('rejects and destroys both ends on a malformed expectation', async () => {
    const sink = new Sink();
    const source = new PassThrough();
    await expect(copyVerified(source, sink, { digest: 'sha256:short' })).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    });
    expect(sink.destroyed).toBe(true);
    expect(source.destroyed).toBe(true);
  });

  it('stops when aborted', async () => {
    const sink = new Sink();
    const source = new PassThrough();
    const controller = new AbortController();
    const copying = copyVerified(source, sink, { digest }, { signal: controller.signal });
    source.write(text.encode('the quick'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sink.bytes).toBe('the quick'.length);
    controller.abort();
    await expect(copying).rejects.toMatchObject({ name: 'AbortError' });
    expect(sink.destroyed).toBe(true);
    expect(sink.writableFinished).toBe(false);
  });

  it('streams 64 MiB with bounded read-ahead', async () => {
    const total = 64 * 1024 * 1024;
    const chunkSize = 256 * 1024;
    const digest = referenceDigest(total, chunkSize);

    const { state, chunks } = generated(total, chunkSize);
    let maxAhead = 0;
    let written = 0;
    const sink = new Writable({
      highWaterMark: chunkSize,
      write(chunk: Uint8Array, _encoding, callback) {
        written += chunk.byteLength;
        maxAhead = Math.max(maxAhead, state.produced - written);
        // Yield to the event loop so a source that ignored backpressure would race ahead.
        setImmediate(callback);
      },
    });
    const source = Readable.from(chunks(), { objectMode: false, highWaterMark: chunkSize });
    const result = await copyVerified(source, sink, { digest, size: total });
    expect(result).toEqual({ digest, size: total });
    expect(written).toBe(total);
    // Buffering the whole stream would put tens of MiB between source and sink.
    expect(maxAhead).toBeLessThanOrEqual(16 * chunkSize);
  });
});

describe('hashStream', () => {
  it('hashes a Node stream like digestOf', async () => {
    const result = await hashStream(Readable.from(chunksOf('a', 'bc', '')));
    expect(result).toEqual({ digest: digestOf('abc'), size: 3 });
  });

  it('hashes a web stream with sha512', async () => {
    const result = await hashStream(webStreamOf(chunksOf('ab', 'c')), 'sha512');
    expect(result).toEqual({ digest: digestOf('abc', 'sha512'), size: 3 });
  });

  it('hashes an empty stream', async () => {
    expect(await hashStream(Readable.from([]))).toEqual({ digest: digestOf(''), size: 0 });
  });

  it('propagates source errors', async () => {
    const source = new Readable({
      read() {
        this.destroy(new Error('disk gone'));
      },
    });
    await expect(hashStream(source)).rejects.toThrow('disk gone');
  });

  it('hashes 64 MiB from a web stream holding only a few chunks at a time', async () => {
    const total = 64 * 1024 * 1024;
    const chunkSize = 1024 * 1024;
    const digest = referenceDigest(total, chunkSize);

    const iterator = generated(total, chunkSize, 8).chunks();
    const source = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          const next = iterator.next();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        },
      },
      { highWaterMark: 1 },
    );
    // The 8 buffers are recycled: reading ahead 8 chunks before hashing would change the digest.
    expect(await hashStream(source)).toEqual({ digest, size: total });
  });

  it('notices when a consumer reads too far ahead (control for the test above)', async () => {
    const total = 4 * 1024 * 1024;
    const chunkSize = 64 * 1024;
    const chunks = [...generated(total, chunkSize, 8).chunks()];
    const digester = new Digester();
    for (const chunk of chunks) digester.update(chunk);
    expect(digester.digest()).not.toBe(referenceDigest(total, chunkSize));
  });
});
