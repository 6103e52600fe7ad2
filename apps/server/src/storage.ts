import { join } from 'node:path';
import {
  BucketAccessError,
  createFsObjectStore,
  createS3ObjectStore,
  type ObjectStore,
  S3_FALLBACKS,
  type S3Config,
  type S3Feature,
} from '@epoch/registry';
import { ConfigError, loadS3Config, type ServerConfig } from './config.js';
import { prepareDataDir } from './data-dir.js';
import type { Logger } from './log.js';

/**
 * The object store the server runs on: S3 when `EPOCH_S3_*` (or the S3 env file) configure it,
 * otherwise the filesystem under `<data dir>/objects`, kept apart from the SQLite index file.
 */
export async function openObjectStore(
  config: ServerConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ObjectStore> {
  const s3 = loadS3Config(env);
  if (s3) return openS3(s3);
  await prepareDataDir(config.dataDir);
  return createFsObjectStore(join(config.dataDir, 'objects'));
}

/** The S3 store; a bucket that is missing or refused is a `ConfigError` naming the variables. */
async function openS3(s3: S3Config): Promise<ObjectStore> {
  try {
    return await createS3ObjectStore(s3);
  } catch (err) {
    if (!(err instanceof BucketAccessError)) throw err;
    const fix =
      err.problem === 'not-found'
        ? ' (EPOCH_S3_BUCKET)'
        : ': check EPOCH_S3_ACCESS_KEY and EPOCH_S3_SECRET_KEY';
    throw new ConfigError(`${err.message}${fix}`, { cause: err });
  }
}

/**
 * Logs what the S3 server was found to lack at start-up (`createS3ObjectStore` probes it) and the
 * slower path the driver takes instead of each; nothing on the filesystem or a full-featured S3.
 */
export function logStorageCapabilities(store: ObjectStore, log: Logger): void {
  if (store.kind !== 's3' || !('capabilities' in store)) return;
  const caps = store.capabilities as Record<S3Feature, boolean>;
  const missing = (Object.keys(S3_FALLBACKS) as S3Feature[]).filter((f) => caps[f] === false);
  if (missing.length === 0) return;
  log.warn(
    { missing: Object.fromEntries(missing.map((f) => [f, S3_FALLBACKS[f]])) },
    'the S3 server lacks optional features: slower paths are used instead',
  );
}
