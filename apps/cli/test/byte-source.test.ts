import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { ByteSink } from '@epoch/oci';
import { describe, expect, it } from 'vitest';
import { socketSource } from '../src/support/byte-source.js';

const MiB = 1024 * 1024;
const TOTAL = 48 * MiB;

/** A child writing TOTAL bytes of a counting pattern to its stdout, then exiting. */
const WRITER = `
  const block = Buffer.alloc(1 << 20);
  let n = 0;
  const next = () => {
    while (n < ${TOTAL / MiB}) {
      for (let i = 0; i < block.length; i += 4) block.writeUInt32LE(n * (block.length / 4) + i / 4, i);
      n++;
      if (!process.stdout.write(Buffer.from(block))) return process.stdout.once('drain', next);
    }
  };
  next();
`;

function expectedDigest(): string {
  const hash = createHash('sha256');
  const block = Buffer.alloc(MiB);
  for (let n = 0; n < TOTAL / MiB; n++) {
    for (let i = 0; i < block.length; i += 4)
      block.writeUInt32LE(n * (block.length / 4) + i / 4, i);
    hash.update(block);
  }
  return hash.digest('hex');
}

describe('socketSource', () => {
  it('hands a child’s output over in order, its buffer untouched while the sink waits', async () => {
    const socket = await socketSource();
    const child = spawn(process.execPath, ['-e', WRITER], {
      stdio: ['ignore', socket.peer, 'inherit'],
    });
    socket.peer.destroy();
    // Bytes the child writes before the source is read wait in the socket.
    await new Promise((r) => setTimeout(r, 200));
    const hash = createHash('sha256');
    let writes = 0;
    let paused = 0;
    let ended = false;
    const sink: ByteSink = {
      write(bytes) {
        expect(ended).toBe(false);
        hash.update(bytes);
        writes++;
        if (writes % 7 !== 0) return;
        // A sink that waits (a pack being sent): the view must hold the same bytes after.
        paused++;
        const before = createHash('sha256').update(bytes).digest('hex');
        return new Promise<void>((resolve) => setTimeout(resolve, 2)).then(() => {
          expect(createHash('sha256').update(bytes).digest('hex')).toBe(before);
        });
      },
      end() {
        ended = true;
      },
    };
    await socket.source(sink);
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(ended).toBe(true);
    expect(paused).toBeGreaterThan(5);
    expect(hash.digest('hex')).toBe(expectedDigest());
  });

  it('stops reading and rejects when the sink throws', async () => {
    const socket = await socketSource();
    const child = spawn(process.execPath, ['-e', WRITER], {
      stdio: ['ignore', socket.peer, 'ignore'],
    });
    socket.peer.destroy();
    const sink: ByteSink = {
      write() {
        throw new Error('not a tar');
      },
      end() {},
    };
    await expect(socket.source(sink)).rejects.toThrow('not a tar');
    // The writer sees its reader gone (EPIPE) instead of hanging.
    const [code] = await once(child, 'exit');
    expect(code).not.toBe(0);
  });
});
