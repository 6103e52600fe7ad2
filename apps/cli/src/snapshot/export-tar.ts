import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import {
  type ByteSink,
  ENVELOPE_NAME,
  type ExportedFile,
  envelopeConfig,
  exportedFile,
  TarFormatError,
  type TarHeader,
  TarReader,
} from '@epoch/oci';
import type { ByteSource } from '../support/byte-source.js';
import { CliError } from '../support/errors.js';

const ENVELOPE_LIMIT = 4 * 1024 * 1024;
const EMPTY = 'the snapshot export is empty';

/** A regular file of an export tar, as {@link exportTarSink} tells it. */
export interface ExportFile extends ExportedFile {
  /** Bytes in the entry (the data segments of a sparse file). */
  size: number;
}

/**
 * Reads the export `source` gives through {@link exportTarSink}: each regular file's bytes go
 * to the sink `file` returns for it. Resolves with `snapshot.json`, verbatim and checked.
 */
export async function readExport(
  source: ByteSource,
  file: (file: ExportFile) => ByteSink,
): Promise<string> {
  let envelope: string | undefined;
  await source(
    exportTarSink({
      envelope: (text) => {
        envelope = text;
      },
      file,
    }),
  );
  // A tar of no entries at all ends well but has no envelope.
  if (envelope === undefined) throw new CliError(EMPTY);
  return envelope;
}

/** What {@link exportTarSink} calls as it reads an export. */
interface ExportTarHandlers {
  /** `snapshot.json`, verbatim and checked, before any file. */
  envelope(text: string): void;
  /** Each regular file after it, in order: where its bytes go. */
  file(file: ExportFile): ByteSink;
}

/**
 * Reads a `cocoon snapshot export` tar (plain; see {@link maybeGunzip}) written to the returned
 * sink: the first entry must be a version 1 `snapshot.json`; every later regular file must pass
 * the snapshot format's rules (name, mode, sparse records); other entry types are skipped. The
 * bytes are parsed as they come and each file's bytes passed on as views of them, with no copy
 * or allocation per write. Nothing is buffered but the envelope.
 */
function exportTarSink(handlers: ExportTarHandlers): ByteSink {
  const seen = new Set<string>();
  let first = true;
  const reader = new TarReader((header) => {
    if (first) {
      first = false;
      return envelopeSink(header, handlers);
    }
    if (header.type !== 'file') return undefined;
    const file = readHeader(header, seen);
    return handlers.file({ ...file, size: header.size });
  });
  const told = (err: unknown) => {
    if (err instanceof TarFormatError) {
      throw new CliError(`the snapshot export is not a readable tar: ${err.message}`);
    }
    throw err;
  };
  let written = 0;
  return {
    write: (bytes) => {
      written += bytes.length;
      try {
        const pending = reader.write(bytes);
        return pending ? pending.catch(told) : undefined;
      } catch (err) {
        return told(err);
      }
    },
    end: () => {
      if (written === 0) throw new CliError(EMPTY);
      try {
        reader.end();
      } catch (err) {
        told(err);
      }
    },
  };
}

/** The first entry: `snapshot.json`, gathered (it is small) and checked when it ends. */
function envelopeSink(header: TarHeader, handlers: ExportTarHandlers): ByteSink {
  const name = header.name.replace(/^\.\//, '');
  if (name !== ENVELOPE_NAME) {
    throw new CliError(
      `not a cocoon snapshot export: the first entry is ${name}, not ${ENVELOPE_NAME}`,
    );
  }
  if (header.size > ENVELOPE_LIMIT) throw new CliError(`${ENVELOPE_NAME} is too large`);
  const bytes = Buffer.alloc(header.size);
  let filled = 0;
  return {
    write: (piece) => {
      filled += piece.copy(bytes, filled);
    },
    end: () => {
      const envelope = bytes.toString('utf8');
      try {
        envelopeConfig(envelope);
      } catch (err) {
        throw new CliError(`${ENVELOPE_NAME}: ${(err as Error).message}`);
      }
      handlers.envelope(envelope);
    },
  };
}

/** A tar header read by the snapshot format's rules, its refusal told as the CLI tells errors. */
function readHeader(header: TarHeader, seen: Set<string>): ExportedFile {
  try {
    return exportedFile(
      {
        name: header.name,
        size: header.size,
        mode: header.mode,
        ...(header.pax ? { pax: header.pax } : {}),
      },
      seen,
    );
  } catch (err) {
    throw new CliError(
      `unexpected entry ${header.name} in the snapshot export: ${(err as Error).message}`,
    );
  }
}

/** Whether bytes start with gzip's magic (cocoon exports may be gzipped, `--gzip`). */
export function gzipped(bytes: Uint8Array): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** A stream, gunzipped if {@link gzipped}. */
export async function maybeGunzip(tar: Readable): Promise<Readable> {
  const first: Buffer | null = await new Promise((resolve, reject) => {
    const onReadable = () => {
      const chunk = tar.read() as Buffer | null;
      if (chunk === null && !tar.readableEnded) return;
      cleanup();
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      tar.off('readable', onReadable);
      tar.off('end', onEnd);
      tar.off('error', onError);
    };
    tar.on('readable', onReadable);
    tar.on('end', onEnd);
    tar.on('error', onError);
  });
  if (first === null) throw new CliError(EMPTY);
  tar.unshift(first);
  if (gzipped(first)) {
    const gunzip = createGunzip();
    tar.on('error', (err) => gunzip.destroy(err));
    return tar.pipe(gunzip);
  }
  return tar;
}
