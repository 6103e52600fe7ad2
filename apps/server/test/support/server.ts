import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ObjectStore } from '@epoch/registry';
import type { TokenScope } from '@epoch/store';
import {
  type S3TestServer,
  startS3Server,
} from '../../../../packages/registry/test/support/s3-server.js';
import { loadConfig } from '../../src/config.js';
import { type RunningServer, startServer } from '../../src/server.js';

export type Backend = 'filesystem' | 's3';

export interface TestServer {
  url: string;
  server: RunningServer;
  store: ObjectStore;
  dataDir: string;
  /** Every key in the store, sorted: to show that a rejected request stored nothing. */
  keys(): Promise<string[]>;
  /** The environment the server was started with (storage and data dir), for CLI runs. */
  env: NodeJS.ProcessEnv;
  /**
   * Creates a database token with these scopes (default admin on `*`) and returns its
   * plaintext. The first token ends the out-of-the-box anonymous loopback writes.
   */
  token(scopes?: TokenScope[], repoPattern?: string): Promise<string>;
  /** Stops the in-process S3 server (storage becomes unreachable); a no-op on the filesystem. */
  stopStorage(): Promise<void>;
  /** Stops the server but keeps its storage and data dir (e.g. to run `epoch reindex`). */
  halt(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a real Epoch server on a random loopback port over the given storage backend.
 * `options.s3`: an S3 server the caller started (and closes); `env` may point
 * `EPOCH_S3_ENDPOINT` at a proxy in front of it.
 */
export async function startTestServer(
  backend: Backend,
  env: Record<string, string> = {},
  options: { s3?: S3TestServer } = {},
): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'epoch-server-'));
  const ownS3 = backend === 's3' && !options.s3 ? await startS3Server() : undefined;
  const s3 = backend === 's3' ? (options.s3 ?? ownS3) : undefined;
  // An empty S3 env file keeps a developer's ~/.config/epoch/s3.env out of the tests.
  await writeFile(join(dataDir, 's3.env'), '');
  const fullEnv: NodeJS.ProcessEnv = {
    EPOCH_ADDR: '127.0.0.1:0',
    EPOCH_DATA_DIR: dataDir,
    EPOCH_LOG_LEVEL: 'silent',
    EPOCH_S3_ENV_FILE: join(dataDir, 's3.env'),
    ...(s3
      ? {
          EPOCH_S3_ENDPOINT: s3.endpoint,
          EPOCH_S3_ACCESS_KEY: s3.accessKey,
          EPOCH_S3_SECRET_KEY: s3.secretKey,
          EPOCH_S3_BUCKET: s3.bucket,
        }
      : {}),
    ...env,
  };
  const server = await startServer(loadConfig(fullEnv), { env: fullEnv });
  const store = server.registry.store;
  let halted: Promise<void> | undefined;
  const halt = (): Promise<void> => {
    halted ??= server.close(1000);
    return halted;
  };
  return {
    env: fullEnv,
    halt,
    async token(scopes = ['admin'], repoPattern = '*') {
      const { plaintext } = await server.index.createToken({
        name: `test-${scopes.join('-')}-${Math.random().toString(36).slice(2, 8)}`,
        createdBy: 'test',
        scopes,
        repoPattern,
      });
      return plaintext;
    },
    url: server.url,
    server,
    store,
    dataDir,
    async keys() {
      const keys: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.list('', cursor ? { cursor } : {});
        keys.push(...page.objects.map((o) => o.key));
        cursor = page.cursor;
      } while (cursor);
      return keys.sort();
    },
    async stopStorage() {
      await s3?.close();
    },
    async stop() {
      await halt();
      await ownS3?.close().catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export const backends: Backend[] = ['filesystem', 's3'];
