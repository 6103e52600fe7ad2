import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ParallelDigester } from '../../src/core/parallel-digester.js';

const MiB = 1024 * 1024;

function expected(bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Feeds `bytes` in `chunk`-sized pieces, waiting whenever `update` asks to. */
async function feed(digester: ParallelDigester, bytes: Uint8Array, chunk: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += chunk) {
    await digester.update(bytes.subarray(i, i + chunk));
  }
}

describe('ParallelDigester', () => {
  it('hashes like node:crypto across batch boundaries, for any chunking', async () => {
    const data = randomBytes(9 * MiB + 77);
    for (const size of [0, 1, 512 * 1024, 512 * 1024 + 1, data.length]) {
      for (const chunk of [1000, 65_536, 3 * MiB]) {
        const digester = new ParallelDigester();
        await feed(digester, data.subarray(0, size), chunk);
        expect(digester.bytes).toBe(size);
        expect(await digester.digest(), `size ${size}, chunk ${chunk}`).toBe(
          expected(data.subarray(0, size)),
        );
      }
    }
  });

  it('copies the bytes it is given, so the caller may reuse its buffer at once', async () => {
    const buffer = Buffer.alloc(100_000, 1);
    const digester = new ParallelDigester();
    digester.update(buffer);
    buffer.fill(2);
    digester.update(buffer);
    expect(await digester.digest()).toBe(
      expected(Buffer.concat([Buffer.alloc(100_000, 1), Buffer.alloc(100_000, 2)])),
    );
  });

  it('copy() forks the state: both go on independently', async () => {
    const a = randomBytes(700_000);
    const b = randomBytes(300_000);
    const c = randomBytes(200_000);
    const first = new ParallelDigester();
    first.update(a);
    const fork = first.copy();
    first.update(b);
    fork.update(c);
    expect(fork.bytes).toBe(a.length + c.length);
    expect(await first.digest()).toBe(expected(Buffer.concat([a, b])));
    expect(await fork.digest()).toBe(expected(Buffer.concat([a, c])));
  });

  it('does sha512 too, and refuses use after digest() or release()', async () => {
    const digester = new ParallelDigester('sha512');
    digester.update(Buffer.from('abc'));
    expect(await digester.digest()).toBe(expected(Buffer.from('abc'), 'sha512'));
    expect(() => digester.update(Buffer.from('x'))).toThrow(/after digest/);
    await expect(digester.digest()).rejects.toThrow(/twice/);
    const released = new ParallelDigester();
    released.release();
    expect(() => released.copy()).toThrow(/release/);
  });

  it('asks its caller to wait when the thread falls behind, and release() lets every waiter go', async () => {
    const digester = new ParallelDigester();
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 64 && waits.length < 2; i++) {
      const wait = digester.update(Buffer.alloc(512 * 1024, i));
      if (wait) waits.push(wait);
    }
    expect(waits.length).toBe(2);
    digester.release();
    const settled = await Promise.race([
      Promise.all(waits).then(() => 'released'),
      new Promise((resolve) => setTimeout(() => resolve('stuck'), 5000)),
    ]);
    expect(settled).toBe('released');
  });

  it('a crashed hashing thread rejects the digests it held, and the next digester gets a new one', async () => {
    const held = new ParallelDigester();
    held.update(Buffer.from('lost'));
    // An algorithm node:crypto does not know makes the worker throw, which ends the thread.
    const poison = new ParallelDigester('bogus' as 'sha256');
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Still given bytes after the crash (more than a batch), it neither spins nor blocks.
    expect(held.update(Buffer.alloc(3 * MiB))).toBeUndefined();
    await expect(held.digest()).rejects.toThrow();
    poison.release();
    const next = new ParallelDigester();
    next.update(Buffer.from('abc'));
    expect(await next.digest()).toBe(expected(Buffer.from('abc')));
  });

  it('keeps the process alive while a digest is awaited, and not once it is idle', () => {
    // The built module, as a real process loads it (node cannot run the TypeScript source).
    const url = new URL('../../dist/core/parallel-digester.js', import.meta.url).pathname;
    const script = `
      const { ParallelDigester } = await import(${JSON.stringify(url)});
      const d = new ParallelDigester();
      d.update(Buffer.alloc(3 << 20, 7));
      console.log(await d.digest());
      const idle = new ParallelDigester();
      idle.update(Buffer.from('never digested'));
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(child.status, child.stderr).toBe(0);
    expect(child.stdout.trim()).toBe(expected(Buffer.alloc(3 << 20, 7)));
  });
});
