import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3Server } from '@epoch/test-support/s3-server';
import { createFsObjectStore } from '../../src/storage/fs-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { createS3ObjectStore } from '../../src/storage/s3-config.js';

/** A way to get a fresh, empty object store for one test, and to throw it away afterwards. */
export interface StoreFactory {
  name: string;
  create(): Promise<{ store: ObjectStore; cleanup: () => Promise<void> }>;
}

/** Both drivers, so every registry-level test runs on the filesystem and on S3. */
export function storeFactories(): StoreFactory[] {
  return [
    {
      name: 'filesystem',
      async create() {
        const dir = await mkdtemp(join(tmpdir(), 'epoch-core-'));
        const store = await createFsObjectStore(dir);
        return {
          store,
          cleanup: async () => {
            await store.close();
            await rm(dir, { recursive: true, force: true });
          },
        };
      },
    },
    {
      name: 's3',
      async create() {
        const server = await startS3Server();
        const store = await createS3ObjectStore({
          endpoint: server.endpoint,
          accessKey: server.accessKey,
          secretKey: server.secretKey,
          bucket: server.bucket,
          region: 'us-east-1',
          prefix: 'epoch/',
        });
        return {
          store,
          cleanup: async () => {
            await store.close();
            await server.close();
          },
        };
      },
    },
  ];
}
