import { join } from 'node:path';
import {
  createFsObjectStore,
  createS3ObjectStore,
  type ObjectStore,
  s3ConfigFromEnv,
} from '@epoch/registry';
import type { ServerConfig } from './config.js';

/**
 * The object store the server runs on: S3 when `EPOCH_S3_*` (or the S3 env file) configure it,
 * otherwise the filesystem under `<data dir>/objects`, kept apart from the SQLite index file.
 */
export async function openObjectStore(
  config: ServerConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ObjectStore> {
  const s3 = s3ConfigFromEnv(env);
  if (s3) return createS3ObjectStore(s3);
  return createFsObjectStore(join(config.dataDir, 'objects'));
}
