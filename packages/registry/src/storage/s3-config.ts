import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { validatePrefix } from './keys.js';
import type { S3Capabilities } from './s3-capabilities.js';
import type { S3ObjectStore } from './s3-store.js';

/** Where the S3 settings file is looked for when `EPOCH_S3_ENV_FILE` is not set (upstream's). */
export const DEFAULT_S3_ENV_FILE = '~/.config/epoch/s3.env';

/** Connection settings of the S3 object store, as read from the `EPOCH_S3_*` variables. */
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

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/**
 * Reads the S3 settings from the environment, upstream-compatible: `EPOCH_S3_ENDPOINT` (with or
 * without scheme), `EPOCH_S3_ACCESS_KEY`, `EPOCH_S3_SECRET_KEY`, `EPOCH_S3_BUCKET`,
 * `EPOCH_S3_REGION` (default `us-east-1`), `EPOCH_S3_SECURE` (`true`/`false`; default from the
 * endpoint's scheme, else true; when both are given the variable wins), `EPOCH_S3_PREFIX`
 * (default `epoch/`, normalised to end with `/`, empty allowed).
 *
 * When the endpoint, access key or bucket is missing, `KEY=VALUE` lines are also read from
 * `EPOCH_S3_ENV_FILE` (default `~/.config/epoch/s3.env`; `#` comments, optional `export` and
 * quotes). Real environment variables always win over the file.
 *
 * Returns `undefined` when S3 is not configured at all (the filesystem store is used), and throws
 * an `Error` naming the variable when the configuration is incomplete or invalid.
 */
export function s3ConfigFromEnv(env: NodeJS.ProcessEnv = process.env): S3Config | undefined {
  const vars = { ...env };
  if (!vars.EPOCH_S3_ENDPOINT || !vars.EPOCH_S3_ACCESS_KEY || !vars.EPOCH_S3_BUCKET) {
    for (const [name, value] of Object.entries(readEnvFile(env))) {
      if (!vars[name]) vars[name] = value;
    }
  }
  const rawEndpoint = vars.EPOCH_S3_ENDPOINT?.trim();
  const accessKey = vars.EPOCH_S3_ACCESS_KEY?.trim();
  const secretKey = vars.EPOCH_S3_SECRET_KEY?.trim();
  const bucket = vars.EPOCH_S3_BUCKET?.trim();
  if (!rawEndpoint && !accessKey && !secretKey && !bucket) return undefined;

  const required = {
    EPOCH_S3_ENDPOINT: rawEndpoint,
    EPOCH_S3_ACCESS_KEY: accessKey,
    EPOCH_S3_SECRET_KEY: secretKey,
    EPOCH_S3_BUCKET: bucket,
  };
  const missing = Object.entries(required)
    .filter(([, value]) => !value)
    .map(([name]) => name);
  if (missing.length > 0 || !rawEndpoint || !accessKey || !secretKey || !bucket) {
    throw new Error(
      `S3 storage is partly configured: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set ` +
        '(set all of EPOCH_S3_ENDPOINT, EPOCH_S3_ACCESS_KEY, EPOCH_S3_SECRET_KEY and EPOCH_S3_BUCKET, or none for the filesystem store)',
    );
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/.test(bucket)) {
    throw new Error(`EPOCH_S3_BUCKET is not a valid bucket name: ${JSON.stringify(bucket)}`);
  }

  const secure = parseSecure(vars.EPOCH_S3_SECURE);
  const endpoint = parseEndpoint(rawEndpoint, secure);
  const region = vars.EPOCH_S3_REGION?.trim() || 'us-east-1';
  if (!/^[a-z0-9-]+$/i.test(region)) {
    throw new Error(`EPOCH_S3_REGION is not a valid region: ${JSON.stringify(region)}`);
  }
  return {
    endpoint,
    accessKey,
    secretKey,
    bucket,
    region,
    prefix: parsePrefix(vars.EPOCH_S3_PREFIX),
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

function parseSecure(value: string | undefined): boolean | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new Error(`EPOCH_S3_SECURE must be true or false, not ${JSON.stringify(value)}`);
}

function parseEndpoint(raw: string, secure: boolean | undefined): string {
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  let url: URL;
  try {
    url = new URL(hasScheme ? raw : `${secure === false ? 'http' : 'https'}://${raw}`);
  } catch {
    throw new Error(`EPOCH_S3_ENDPOINT is not a valid host or URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`EPOCH_S3_ENDPOINT must use http or https, not ${url.protocol.slice(0, -1)}`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw new Error(
      `EPOCH_S3_ENDPOINT must be a host (and port) only, without a path: ${JSON.stringify(raw)}`,
    );
  }
  if (url.username || url.password) {
    throw new Error('EPOCH_S3_ENDPOINT must not contain credentials; use EPOCH_S3_ACCESS_KEY');
  }
  // An explicit EPOCH_S3_SECURE wins over the scheme written in the endpoint.
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
    throw new Error(`EPOCH_S3_PREFIX is not a valid key prefix: ${JSON.stringify(value)}`);
  }
  return prefix;
}

/**
 * The `KEY=VALUE` pairs of the settings file. A missing default file is fine; a missing file that
 * `EPOCH_S3_ENV_FILE` names explicitly is a configuration error.
 */
function readEnvFile(env: NodeJS.ProcessEnv): Record<string, string> {
  const explicit = env.EPOCH_S3_ENV_FILE?.trim();
  const home = env.HOME || homedir();
  const file = (explicit || DEFAULT_S3_ENV_FILE).replace(/^~(?=$|\/)/, home);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (!explicit) return {};
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`EPOCH_S3_ENV_FILE names a file that cannot be read: ${reason}`);
  }
  return parseEnvFile(text);
}

/** Parses `KEY=VALUE` lines: `#` comments, blank lines, `export KEY=…`, single or double quotes. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    const [, name = '', rest = ''] = match;
    let value = rest;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\(["\\$`])/g, '$1').replace(/\\n/g, '\n');
    } else {
      // An unquoted value ends at a ` #` comment.
      value = value.replace(/\s+#.*$/, '').trim();
    }
    out[name] = value;
  }
  return out;
}
