import { validatePrefix } from './keys.js';
import type { S3Capabilities } from './s3-capabilities.js';
import type { S3ObjectStore } from './s3-store.js';

/**
 * Connection settings of the S3 object store, checked and normalised (see `resolveS3Config`).
 * The library reads no environment: applications build this from their own configuration.
 */
export interface S3Config {
  /** Absolute URL with scheme, e.g. `https://s3.example.com` or `http://127.0.0.1:9000`. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region: string;
  /** Prepended to every key: `''` or a string ending in `/` (default `epoch/`). */
  prefix: string;
  /** Knobs for tests and unusual servers; the defaults suit AWS S3 and MinIO. */
  tuning?: Partial<S3Tuning>;
  /**
   * Optional S3 features the server is known to have or lack. `createS3ObjectStore` probes the
   * ones not given here; a store made with `new S3ObjectStore` assumes AWS S3's behaviour for them.
   */
  capabilities?: Partial<S3Capabilities>;
}

/** Tunables of the S3 driver. */
export interface S3Tuning {
  /** Parts uploaded in parallel by one streaming upload (each buffers one part in memory). */
  partConcurrency: number;
  /** `DeleteObjects` batches (of 1,000 keys) in flight at once. */
  deleteConcurrency: number;
  /** Objects up to this size are copied with one `CopyObject` (S3's limit is 5 GiB). */
  maxCopyObjectSize: number;
  /** Range size of one `UploadPartCopy` in a multipart copy (≥ 5 MiB, ≤ 5 GiB). */
  copyPartSize: number;
  /** Request attempts in the SDK's standard retry mode (first attempt included). */
  maxAttempts: number;
}

/** Connection settings as given by the application, before they are checked and normalised. */
export interface S3Settings {
  /** Host (and port) or absolute `http(s)` URL without a path. */
  endpoint?: string | undefined;
  /**
   * Whether to use https. Without it the endpoint's scheme decides, else https; when both are
   * given this wins.
   */
  secure?: boolean | undefined;
  accessKey?: string | undefined;
  secretKey?: string | undefined;
  bucket?: string | undefined;
  /** Default `us-east-1`. */
  region?: string | undefined;
  /** Key prefix (default `epoch/`); leading slashes go, a trailing one is added, `''` is none. */
  prefix?: string | undefined;
}

/** A field of {@link S3Settings}. */
export type S3Setting = keyof S3Settings;

/** What is wrong with a setting {@link S3ConfigError} names. */
export type S3ConfigProblem =
  /** Required settings are empty or absent (all of them are in `missing`). */
  | 'missing'
  /** Not a valid value of its kind (bucket name, region, host or URL, key prefix). */
  | 'invalid'
  /** The endpoint's scheme is neither http nor https. */
  | 'scheme'
  /** The endpoint has a path, query or fragment. */
  | 'path'
  /** The endpoint carries credentials. */
  | 'credentials';

/**
 * The S3 settings are incomplete or invalid. `setting` is the (first) field concerned, `value`
 * what was given for it; applications that read the settings from somewhere turn this into a
 * message naming their own variable or flag.
 */
export class S3ConfigError extends Error {
  override readonly name = 'S3ConfigError';
  constructor(
    readonly setting: S3Setting,
    readonly problem: S3ConfigProblem,
    readonly value: string | undefined,
    /** For `missing`: every required setting that is missing, in declaration order. */
    readonly missing: readonly S3Setting[] = [],
  ) {
    super(s3ConfigMessage(setting, problem, value, missing));
  }
}

function s3ConfigMessage(
  setting: S3Setting,
  problem: S3ConfigProblem,
  value: string | undefined,
  missing: readonly S3Setting[],
): string {
  const shown = JSON.stringify(value);
  switch (problem) {
    case 'missing':
      return `S3 settings missing: ${missing.join(', ')}`;
    case 'scheme':
      return `S3 ${setting} must use http or https: ${shown}`;
    case 'path':
      return `S3 ${setting} must be a host (and port) only, without a path: ${shown}`;
    case 'credentials':
      return `S3 ${setting} must not contain credentials`;
    default:
      return `S3 ${setting} is not valid: ${shown}`;
  }
}

/**
 * Checks the settings and normalises them into an {@link S3Config}: the endpoint becomes an
 * origin (`https://` unless `secure` is false or its scheme says http), the region defaults to
 * `us-east-1`, the prefix to `epoch/` and ends with `/`. Throws {@link S3ConfigError} on the first
 * problem: missing endpoint, keys or bucket, then the bucket name, the endpoint, the region and
 * the prefix.
 */
export function resolveS3Config(settings: S3Settings): S3Config {
  const { endpoint: rawEndpoint, accessKey, secretKey, bucket } = settings;
  const required = { endpoint: rawEndpoint, accessKey, secretKey, bucket };
  const missing = (Object.keys(required) as (keyof typeof required)[]).filter((k) => !required[k]);
  if (missing.length > 0 || !rawEndpoint || !accessKey || !secretKey || !bucket) {
    throw new S3ConfigError(missing[0] ?? 'endpoint', 'missing', undefined, missing);
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/.test(bucket)) {
    throw new S3ConfigError('bucket', 'invalid', bucket);
  }
  const endpoint = parseEndpoint(rawEndpoint, settings.secure);
  const region = settings.region || 'us-east-1';
  if (!/^[a-z0-9-]+$/i.test(region)) throw new S3ConfigError('region', 'invalid', region);
  return {
    endpoint,
    accessKey,
    secretKey,
    bucket,
    region,
    prefix: parsePrefix(settings.prefix),
  };
}

/**
 * Connects to the bucket and checks that it is reachable with these credentials, so a wrong
 * setting fails at start-up with a clear message instead of on the first push, then probes which
 * optional S3 features the server has (those `config.capabilities` does not state; see
 * `S3Capabilities`) so that every operation takes a path the server supports. A server that cannot
 * work at all (no multipart uploads, say) fails here with `UnsupportedStorageFeatureError`. The
 * AWS SDK is loaded only here, so a filesystem-backed process never pays its ~20 MiB of memory.
 */
export async function createS3ObjectStore(config: S3Config): Promise<S3ObjectStore> {
  const { S3ObjectStore } = await import('./s3-store.js');
  const store = new S3ObjectStore(config);
  try {
    await store.checkBucket();
    await store.probe();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

function parseEndpoint(raw: string, secure: boolean | undefined): string {
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  let url: URL;
  try {
    url = new URL(hasScheme ? raw : `${secure === false ? 'http' : 'https'}://${raw}`);
  } catch {
    throw new S3ConfigError('endpoint', 'invalid', raw);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new S3ConfigError('endpoint', 'scheme', raw);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw new S3ConfigError('endpoint', 'path', raw);
  }
  if (url.username || url.password) throw new S3ConfigError('endpoint', 'credentials', raw);
  // An explicit `secure` wins over the scheme written in the endpoint.
  if (secure !== undefined) url.protocol = secure ? 'https:' : 'http:';
  return url.origin;
}

function parsePrefix(value: string | undefined): string {
  if (value === undefined) return 'epoch/';
  let prefix = value.trim().replace(/^\/+/, '');
  if (prefix === '') return '';
  if (!prefix.endsWith('/')) prefix += '/';
  try {
    validatePrefix(prefix);
  } catch {
    throw new S3ConfigError('prefix', 'invalid', value);
  }
  return prefix;
}
