import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, digestOf, type ImageManifest, MediaTypes, parseManifest } from '@epoch/oci';
import BetterSqlite3 from 'better-sqlite3';
import { createConnection } from 'mysql2/promise';
import { describe } from 'vitest';
import { openStore, type Store } from '../src/index.js';

/** MariaDB/MySQL server for the MySQL suites; unset means those suites are skipped. */
export const MYSQL_URL = process.env.EPOCH_TEST_MYSQL_URL;

/** A fresh, empty database and how to open stores on it. */
export interface TestDatabase {
  kind: 'sqlite' | 'mysql';
  open(): Promise<Store>;
  /** Runs raw SQL on its own connection (to inspect what the store wrote, or to damage it). */
  query(statement: string): Promise<Record<string, unknown>[]>;
  drop(): Promise<void>;
}

async function freshSqlite(): Promise<TestDatabase> {
  const dir = await mkdtemp(join(tmpdir(), 'epoch-store-'));
  const file = join(dir, 'index.db');
  return {
    kind: 'sqlite',
    open: () => openStore({ sqliteFile: file }),
    query: async (statement) => {
      const db = new BetterSqlite3(file);
      try {
        const prepared = db.prepare(statement);
        if (!prepared.reader) {
          prepared.run();
          return [];
        }
        return prepared.all() as Record<string, unknown>[];
      } finally {
        db.close();
      }
    },
    drop: () => rm(dir, { recursive: true, force: true }),
  };
}

async function freshMysql(url: string): Promise<TestDatabase> {
  const name = `epoch_test_${randomBytes(6).toString('hex')}`;
  const server = new URL(url);
  server.pathname = '/';
  const admin = await createConnection({ uri: server.toString() });
  await admin.query(`create database \`${name}\``);
  await admin.end();
  const db = new URL(url);
  db.pathname = `/${name}`;
  const dsn = db.toString();
  return {
    kind: 'mysql',
    open: () => openStore({ dsn }),
    query: async (statement) => {
      const c = await createConnection({ uri: dsn });
      try {
        const [rows] = await c.query(statement);
        return rows as Record<string, unknown>[];
      } finally {
        await c.end();
      }
    },
    drop: async () => {
      const c = await createConnection({ uri: server.toString() });
      await c.query(`drop database if exists \`${name}\``);
      await c.end();
    },
  };
}

/**
 * Declares `body` once per database: SQLite always; MySQL/MariaDB only when
 * `EPOCH_TEST_MYSQL_URL` points at a server (CI sets it), since there is no server to start
 * from inside the test otherwise. Each call of `fresh` makes a new empty database.
 */
export function forEachDatabase(
  body: (fresh: () => Promise<TestDatabase>, kind: 'sqlite' | 'mysql') => void,
): void {
  describe('sqlite', () => body(freshSqlite, 'sqlite'));
  describe.skipIf(MYSQL_URL === undefined)('mysql [needs EPOCH_TEST_MYSQL_URL]', () =>
    body(() => freshMysql(MYSQL_URL ?? ''), 'mysql'),
  );
}

/** A random blob descriptor (content is never stored: the index only needs digests and sizes). */
export function blob(size: number, mediaType: string = MediaTypes.ociLayerGzip) {
  return { mediaType, digest: digestOf(randomBytes(16), 'sha256'), size };
}

/** An image manifest document with the given config and layers (and options). */
export function imageManifest(
  config: { mediaType: string; digest: Digest; size: number },
  layers: { mediaType: string; digest: Digest; size: number }[],
  extra: Record<string, unknown> = {},
) {
  const doc = { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers, ...extra };
  return manifestInput(doc);
}

/** An image index document over the given children. */
export function imageIndex(children: { digest: Digest; size: number; arch: string }[]) {
  const doc = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: children.map((c) => ({
      mediaType: MediaTypes.ociManifest,
      digest: c.digest,
      size: c.size,
      platform: { architecture: c.arch, os: 'linux' },
    })),
  };
  return manifestInput(doc);
}

/** The `recordManifest` input for a document. */
export function manifestInput(doc: unknown) {
  const bytes = Buffer.from(JSON.stringify(doc));
  const parsed = parseManifest(bytes);
  return { digest: digestOf(bytes, 'sha256'), bytes, parsed };
}

/** The parsed image manifest of an input (for `childManifests`). */
export function asImage(input: ReturnType<typeof manifestInput>): ImageManifest {
  if (input.parsed.kind !== 'manifest') throw new Error('not an image manifest');
  return input.parsed.manifest;
}

/** A container image: OCI config plus layers. */
export function containerImage(layerSizes: number[], extra: Record<string, unknown> = {}) {
  const config = blob(100, MediaTypes.ociConfig);
  const layers = layerSizes.map((s) => blob(s));
  return { config, layers, ...imageManifest(config, layers, extra) };
}
