import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RGW, startRgwBucket } from './rgw.js';
import { type S3TestServer, startS3Server } from './s3-server.js';

/**
 * Where a test server keeps its blobs: `filesystem`; `s3`, the in-process S3 server (fauxqs with
 * the S3 features it lacks added); `s3-plain`, fauxqs as published, without the optional S3
 * features; `rgw`, a fresh bucket on the Ceph RGW of `scripts/rgw.sh` (when configured).
 */
export type Backend = 'filesystem' | 's3' | 's3-plain' | 'rgw';

/** A fresh S3 bucket for an S3 backend. */
export function startBackendS3(backend: Exclude<Backend, 'filesystem'>): Promise<S3TestServer> {
  if (backend === 'rgw') return startRgwBucket();
  return startS3Server({ plain: backend === 's3-plain' });
}

/**
 * The backends every end-to-end suite runs on: the filesystem, the in-process S3 server, and Ceph
 * RGW when `scripts/rgw.sh` runs and its variables are set (CI always).
 */
export const backends: Backend[] = ['filesystem', 's3', ...(RGW ? (['rgw'] as const) : [])];

/**
 * What this module needs of `@epoch/server`'s `RunningServer`. This package depends on no
 * `@epoch/*` package (README), so the server's own `loadConfig` and `startServer` are passed in
 * (see {@link testServerStarter}); the types the caller gets back are the server's own.
 */
export interface EpochServerLike {
  url: string;
  close(graceMs?: number): Promise<void>;
  registry: {
    store: {
      list(
        prefix: string,
        options?: { cursor?: string },
      ): Promise<{ objects: { key: string }[]; cursor?: string }>;
    };
  };
  index: {
    tokens: {
      hasAny(): Promise<boolean>;
      create(request: {
        name: string;
        createdBy: string;
        scopes: string[];
        repoPattern?: string;
      }): Promise<{ plaintext: string }>;
    };
  };
}

/** A token scope of server `S` (`@epoch/store`'s `TokenScope`). */
type ScopeOf<S extends EpochServerLike> = Parameters<
  S['index']['tokens']['create']
>[0]['scopes'][number];

export interface TestServer<S extends EpochServerLike> {
  url: string;
  server: S;
  store: S['registry']['store'];
  dataDir: string;
  /** Every key in the store, sorted: to show that a rejected request stored nothing. */
  keys(): Promise<string[]>;
  /** The environment the server was started with (storage and data dir), for CLI runs. */
  env: NodeJS.ProcessEnv;
  /**
   * Creates a database token with these scopes (default admin on `*`) and returns its
   * plaintext. The first token ends the out-of-the-box anonymous loopback writes.
   */
  token(scopes?: ScopeOf<S>[], repoPattern?: string): Promise<string>;
  /**
   * Stops the in-process S3 server (storage becomes unreachable), or deletes the RGW bucket; a
   * no-op on the filesystem.
   */
  stopStorage(): Promise<void>;
  /** Stops the server but keeps its storage and data dir (e.g. to run `epoch reindex`). */
  halt(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `startTestServer` for the given `@epoch/server`: its sources in the server's own tests, its
 * build in `e2e/`. `startTestServer(backend, env, options)` starts a real Epoch server in this
 * process on a random loopback port over the given storage backend. `options.s3`: an S3 server
 * the caller started (and closes); `env` may point `EPOCH_S3_ENDPOINT` at a proxy in front of it.
 */
export function testServerStarter<C, S extends EpochServerLike>(epoch: {
  loadConfig(env: NodeJS.ProcessEnv): C;
  startServer(config: C, options: { env: NodeJS.ProcessEnv }): Promise<S>;
}) {
  return async function startTestServer(
    backend: Backend,
    env: Record<string, string> = {},
    options: { s3?: S3TestServer } = {},
  ): Promise<TestServer<S>> {
    const dataDir = await mkdtemp(join(tmpdir(), 'epoch-server-'));
    const ownS3 =
      backend !== 'filesystem' && !options.s3 ? await startBackendS3(backend) : undefined;
    const s3 = backend !== 'filesystem' ? (options.s3 ?? ownS3) : undefined;
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
    const server = await epoch.startServer(epoch.loadConfig(fullEnv), { env: fullEnv });
    const store = server.registry.store;
    let halted: Promise<void> | undefined;
    const halt = (): Promise<void> => {
      halted ??= server.close(1000);
      return halted;
    };
    return {
      env: fullEnv,
      halt,
      async token(scopes = ['admin'] as ScopeOf<S>[], repoPattern = '*') {
        const first = !(await server.index.tokens.hasAny());
        const { plaintext } = await server.index.tokens.create({
          name: `test-${scopes.join('-')}-${Math.random().toString(36).slice(2, 8)}`,
          createdBy: 'test',
          scopes,
          repoPattern,
        });
        // The server learns within 2 s that the first token ended the open local mode (the API's
        // own token route tells it at once); until then a client would still be let in without
        // credentials and meet the challenge half-way through its work.
        if (first) await openModeEnded(server.url);
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
  };
}

/** Waits (up to 5 s) until a loopback visitor without credentials is no longer an administrator. */
async function openModeEnded(url: string): Promise<void> {
  for (const until = Date.now() + 5000; Date.now() < until; ) {
    if ((await fetch(`${url}/api/tokens`)).status !== 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the open local mode did not end within 5 s of the first token');
}
