import { mkdtemp, open, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ByteSink, writeAll } from '@epoch/oci';

/**
 * Feeds a byte stream into a sink, honouring the sink's promises (nothing more is written until
 * one settles), and ends the sink; resolves once it ended.
 */
export type ByteSource = (sink: ByteSink) => Promise<void>;

/**
 * Reads are this large: a socket read takes what the peer queued (about 200 KiB on Linux), a
 * file read takes it whole. One buffer for the whole stream: the push that reads an export this
 * way allocates nothing per read, and so gives V8's collector no reason to run (a new buffer per
 * read, in a process holding a large chunk table, cost ~100 full collections per push).
 */
const READ_BUFFER = 1024 * 1024;

/** Any readable stream (stdin, a gunzip, a generated tar): its buffers go to the sink as they come. */
export function streamSource(stream: AsyncIterable<Uint8Array>): ByteSource {
  return (sink) => writeAll(stream, sink);
}

/** A file, read into one buffer again and again. */
export function fileSource(path: string): ByteSource {
  return async (sink) => {
    const file = await open(path, 'r');
    try {
      const buffer = Buffer.allocUnsafe(READ_BUFFER);
      for (;;) {
        const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        const pending = sink.write(buffer.subarray(0, bytesRead));
        if (pending) await pending;
      }
    } finally {
      await file.close();
    }
    await sink.end();
  };
}

/** Longest parent directory for {@link socketSource}'s socket (`/epoch-export-XXXXXX/socket`). */
const SOCKET_PARENT_MAX = 70;

/** A connected pair of unix sockets: `peer` goes to a child as its stdout, `source` reads it. */
export interface SocketSource {
  /** The end to hand to the writer (e.g. as a child's stdout); close it here once handed on. */
  peer: Socket;
  /** Reads what is written to `peer`, into one buffer again and again. */
  source: ByteSource;
  /** Stops reading (on failure elsewhere). */
  destroy(): void;
}

/**
 * A socket pair for a child's output, read with no allocation per read (a pipe's reads each
 * make a new buffer). The listening socket lives in a fresh private directory only until the
 * pair is connected; bytes that arrive before {@link SocketSource.source} runs wait in the
 * socket (the writer blocks).
 */
export async function socketSource(): Promise<SocketSource> {
  // A socket's path must fit sockaddr_un (104–108 bytes): a deep TMPDIR gives way to /tmp.
  const parent = Buffer.byteLength(tmpdir()) <= SOCKET_PARENT_MAX ? tmpdir() : '/tmp';
  const dir = await mkdtemp(join(parent, 'epoch-export-'));
  const server = createServer();
  const buffer = Buffer.allocUnsafe(READ_BUFFER);
  let target: ((n: number) => boolean) | undefined;
  let early = 0;
  let ours: Socket;
  let peer: Socket;
  try {
    const path = join(dir, 'socket');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    ours = connect({
      path,
      onread: {
        buffer,
        callback: (n: number) => {
          if (target) return target(n);
          // Read before anyone reads this source: kept in the buffer, reading stopped.
          early = n;
          return false;
        },
      },
    });
    ours.pause();
    await new Promise<void>((resolve, reject) => {
      ours.once('connect', resolve);
      ours.once('error', reject);
    });
    peer = await accepted;
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }

  const source: ByteSource = (sink) =>
    new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (err: unknown) => {
        if (failed) return;
        failed = true;
        ours.destroy();
        reject(err);
      };
      const take = (n: number): boolean => {
        if (failed) return false;
        try {
          const pending = sink.write(buffer.subarray(0, n));
          if (!pending) return true;
          pending.then(() => {
            if (!failed) ours.resume();
          }, fail);
        } catch (err) {
          fail(err);
        }
        ours.pause();
        return false;
      };
      let ended = false;
      ours.once('error', fail);
      ours.once('end', () => {
        if (failed) return;
        ended = true;
        Promise.resolve()
          .then(() => sink.end())
          .then(resolve, fail);
      });
      // Closed without an end or an error (destroyed here, or before this source ran).
      ours.once('close', () => {
        if (!ended) fail(new Error('the export socket closed before the end of the export'));
      });
      if (ours.destroyed) fail(new Error('the export socket was closed'));
      target = take;
      if (early > 0) {
        const n = early;
        early = 0;
        if (!take(n)) return;
      }
      ours.resume();
    });
  return { peer, source, destroy: () => ours.destroy() };
}
