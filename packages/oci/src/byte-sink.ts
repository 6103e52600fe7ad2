/** Where bytes go in order (a tar reader, a file chunker, an upload), told of its end. */
export interface ByteSink {
  /**
   * Takes the next bytes. A returned promise means: keep `bytes` unchanged and write nothing
   * more until it settles (the bytes may be a view of a buffer the caller reads into again).
   */
  write(bytes: Buffer): void | Promise<void>;
  /** No more bytes will come. */
  end(): void | Promise<void>;
}

/**
 * Writes each buffer of `body` to `sink`, waiting for the sink's promises, then ends it.
 */
export async function writeAll(body: AsyncIterable<Uint8Array>, sink: ByteSink): Promise<void> {
  for await (const part of body) {
    const bytes = Buffer.isBuffer(part)
      ? part
      : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    const pending = sink.write(bytes);
    if (pending) await pending;
  }
  await sink.end();
}
