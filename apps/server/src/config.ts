import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import {
  resolveS3Config,
  type S3Config,
  S3ConfigError,
  type S3Setting,
  type S3Settings,
} from '@epoch/registry';

/**
 * Every server setting, read and validated in this one module. Each has a flag (passed in by the
 * CLI as `overrides`) or an environment variable, and a documented default; a wrong value stops
 * start-up with a `ConfigError` naming the setting.
 */
export interface ServerConfig {
  /** Host to bind; undefined means every interface. */
  host: string | undefined;
  port: number;
  /** Data directory: filesystem blobs, SQLite index, upload spool. */
  dataDir: string;
  /** Index database URL (`mysql://…`); undefined means SQLite in the data directory. */
  dsn: string | undefined;
  /** Absolute base URL clients reach the server at, when it cannot be told from the request. */
  publicUrl: string | undefined;
  /**
   * Accept writes from any client without credentials (upstream's open writes). Off by default;
   * out of the box (no static token, no token created yet) loopback clients may write.
   */
  anonymousPush: boolean;
  /** Redirect blob GETs to presigned object-store URLs (S3 only). */
  s3Redirect: boolean;
  /** Largest manifest accepted by PUT. */
  maxManifestBytes: number;
  /**
   * Most descriptors one manifest or index may name (config, layers, subject; children): a
   * bound on the work and the index rows a single PUT can cause.
   */
  maxManifestReferences: number;
  /** Largest blob an upload may produce. */
  maxBlobBytes: number;
  /** An upload untouched for this long is abandoned. */
  uploadIdleTimeoutMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Re-run the storage → index reconcile this often; 0 (the default) runs it at start-up only. */
  reconcileIntervalMs: number;
  /** `EPOCH_REGISTRY_TOKEN`: a static secret with every `/v2/` right and no `/api/` right. */
  registryToken: string | undefined;
  /** `EPOCH_ANONYMOUS_PULL` (default on, as upstream): anonymous callers may read. */
  anonymousPull: boolean;
  /** Dashboard single sign-on; undefined when SSO is off. */
  sso: SsoConfig | undefined;
  /** GC grace period: nothing younger than this is collected (`EPOCH_GC_DELAY`, default 1h). */
  gcDelayMs: number;
  /** Run GC this often in the server; 0 (the default) never on a schedule (`EPOCH_GC_INTERVAL`). */
  gcIntervalMs: number;
  /**
   * A connection that sends and receives nothing for this long is closed (slow-loris uploads,
   * stalled clients). It never cuts a transfer that keeps moving, whatever its length.
   */
  idleTimeoutMs: number;
  /** Upload requests (POST/PATCH/PUT with a body) one caller may have in flight at once. */
  maxConcurrentUploads: number;
  /** Upload sessions one caller may have open (started, not finished, cancelled or idle). */
  maxUploadSessions: number;
  /** `EPOCH_WEB_DIR`: the built dashboard; undefined means the installed `@epoch/web` package's. */
  webDir: string | undefined;
}

/** Single sign-on for the dashboard (Google or any OpenID Connect provider). */
export interface SsoConfig {
  provider: 'google' | 'oidc';
  clientId: string;
  clientSecret: string;
  /** Where the provider sends the browser back: `<public URL>/login/callback`. */
  redirectUri: string;
  /** Issuer for discovery and ID-token validation (`SSO_ISSUER`; Google's for Google). */
  issuer: string | undefined;
  /** Explicit endpoints (upstream's variables); they win over discovery. */
  authorizeUrl: string | undefined;
  tokenUrl: string | undefined;
  userinfoUrl: string | undefined;
  jwksUrl: string | undefined;
  logoutUrl: string | undefined;
  scopes: string[];
  /** Lower-cased e-mail domains whose verified users may sign in. */
  allowedDomains: string[];
  /** Lower-cased e-mails that may sign in. */
  allowedEmails: string[];
  /** Lower-cased e-mails that get admin rights (and may sign in). */
  adminEmails: string[];
  /** Key that signs session cookies (`SSO_COOKIE_SECRET`, at least 32 characters). */
  cookieSecret: string;
}

/**
 * Every environment variable the server reads: the one list that `loadConfig` reads through
 * (a name missing here does not compile) and that the deploy-file checks compare against.
 */
export const SERVER_ENV_VARS = [
  'EPOCH_ADDR',
  'EPOCH_DATA_DIR',
  'EPOCH_DSN',
  'EPOCH_PUBLIC_URL',
  'EPOCH_ANONYMOUS_PUSH',
  'EPOCH_ANONYMOUS_PULL',
  'EPOCH_REGISTRY_TOKEN',
  'EPOCH_S3_REDIRECT',
  'EPOCH_MAX_MANIFEST_BYTES',
  'EPOCH_MAX_MANIFEST_REFERENCES',
  'EPOCH_MAX_BLOB_BYTES',
  'EPOCH_UPLOAD_IDLE_TIMEOUT',
  'EPOCH_LOG_LEVEL',
  'EPOCH_RECONCILE_INTERVAL',
  'EPOCH_GC_DELAY',
  'EPOCH_GC_INTERVAL',
  'EPOCH_WEB_DIR',
  'EPOCH_IDLE_TIMEOUT',
  'EPOCH_MAX_CONCURRENT_UPLOADS',
  'EPOCH_MAX_UPLOAD_SESSIONS',
  // Read by loadS3Config when the server opens its object store.
  'EPOCH_S3_ENDPOINT',
  'EPOCH_S3_ACCESS_KEY',
  'EPOCH_S3_SECRET_KEY',
  'EPOCH_S3_BUCKET',
  'EPOCH_S3_REGION',
  'EPOCH_S3_SECURE',
  'EPOCH_S3_PREFIX',
  'EPOCH_S3_ENV_FILE',
  'SSO_PROVIDER',
  'SSO_CLIENT_ID',
  'SSO_CLIENT_SECRET',
  'SSO_REDIRECT_URI',
  'SSO_ISSUER',
  'SSO_AUTHORIZE_URL',
  'SSO_TOKEN_URL',
  'SSO_USERINFO_URL',
  'SSO_JWKS_URL',
  'SSO_LOGOUT_URL',
  'SSO_SCOPES',
  'SSO_ALLOWED_DOMAINS',
  'SSO_ALLOWED_EMAILS',
  'SSO_ADMIN_EMAILS',
  'SSO_COOKIE_SECRET',
  'GOOGLE_OAUTH_CLIENT_ID',
  'GOOGLE_OAUTH_CLIENT_SECRET',
  'GOOGLE_OAUTH_REDIRECT_URI',
  'GOOGLE_OAUTH_HOSTED_DOMAIN',
] as const;

/** A variable in {@link SERVER_ENV_VARS}. */
export type ServerEnvVar = (typeof SERVER_ENV_VARS)[number];

/** Values given as command-line flags; they win over the environment. */
export interface ConfigOverrides {
  addr?: string;
  dataDir?: string;
  dsn?: string;
}

/** A setting is missing or malformed; the message names it. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: ConfigOverrides = {},
): ServerConfig {
  const read = (name: ServerEnvVar): string | undefined => env[name];
  const { host, port } = parseAddr(overrides.addr ?? read('EPOCH_ADDR') ?? ':4300');
  const dsn = overrides.dsn ?? nonEmpty(read('EPOCH_DSN'));
  if (dsn !== undefined && !/^mysql:\/\//.test(dsn)) {
    throw new ConfigError(`EPOCH_DSN/--dsn must be a mysql:// URL, got ${JSON.stringify(dsn)}`);
  }
  const publicUrl = nonEmpty(read('EPOCH_PUBLIC_URL'));
  if (publicUrl !== undefined && !/^https?:\/\/[^/]+/.test(publicUrl)) {
    throw new ConfigError(
      `EPOCH_PUBLIC_URL must be an http(s) URL, got ${JSON.stringify(publicUrl)}`,
    );
  }
  return {
    host,
    port,
    dataDir: resolve(overrides.dataDir ?? nonEmpty(read('EPOCH_DATA_DIR')) ?? './epoch-data'),
    dsn,
    publicUrl: publicUrl?.replace(/\/+$/, ''),
    anonymousPush: parseBool('EPOCH_ANONYMOUS_PUSH', read('EPOCH_ANONYMOUS_PUSH'), false),
    s3Redirect: parseBool('EPOCH_S3_REDIRECT', read('EPOCH_S3_REDIRECT'), false),
    maxManifestBytes: parseBytes(
      'EPOCH_MAX_MANIFEST_BYTES',
      read('EPOCH_MAX_MANIFEST_BYTES'),
      4 << 20,
    ),
    maxManifestReferences: parseCount(
      'EPOCH_MAX_MANIFEST_REFERENCES',
      read('EPOCH_MAX_MANIFEST_REFERENCES'),
      10_000,
    ),
    maxBlobBytes: parseBytes('EPOCH_MAX_BLOB_BYTES', read('EPOCH_MAX_BLOB_BYTES'), 2 ** 40),
    uploadIdleTimeoutMs: parseDuration(
      'EPOCH_UPLOAD_IDLE_TIMEOUT',
      read('EPOCH_UPLOAD_IDLE_TIMEOUT'),
      60 * 60 * 1000,
    ),
    logLevel: parseLogLevel(read('EPOCH_LOG_LEVEL')),
    reconcileIntervalMs: parseDuration(
      'EPOCH_RECONCILE_INTERVAL',
      read('EPOCH_RECONCILE_INTERVAL'),
      0,
    ),
    registryToken: parseRegistryToken(read('EPOCH_REGISTRY_TOKEN')),
    anonymousPull: parseBool('EPOCH_ANONYMOUS_PULL', read('EPOCH_ANONYMOUS_PULL'), true),
    sso: parseSso(read, publicUrl?.replace(/\/+$/, '')),
    gcDelayMs: parseDuration('EPOCH_GC_DELAY', read('EPOCH_GC_DELAY'), 60 * 60 * 1000),
    gcIntervalMs: parseDuration('EPOCH_GC_INTERVAL', read('EPOCH_GC_INTERVAL'), 0),
    idleTimeoutMs: parseDuration('EPOCH_IDLE_TIMEOUT', read('EPOCH_IDLE_TIMEOUT'), 120_000),
    maxConcurrentUploads: parseCount(
      'EPOCH_MAX_CONCURRENT_UPLOADS',
      read('EPOCH_MAX_CONCURRENT_UPLOADS'),
      32,
    ),
    maxUploadSessions: parseCount(
      'EPOCH_MAX_UPLOAD_SESSIONS',
      read('EPOCH_MAX_UPLOAD_SESSIONS'),
      256,
    ),
    webDir: nonEmpty(read('EPOCH_WEB_DIR')) ? resolve(read('EPOCH_WEB_DIR') as string) : undefined,
  };
}

function parseRegistryToken(value: string | undefined): string | undefined {
  const token = nonEmpty(value);
  if (token !== undefined && token.length < 16) {
    throw new ConfigError('EPOCH_REGISTRY_TOKEN must be at least 16 characters long');
  }
  return token;
}

const GOOGLE = {
  issuer: 'https://accounts.google.com',
  authorizeUrl: 'https://accounts.google.com/o/oauth2/v2/auth',
  tokenUrl: 'https://oauth2.googleapis.com/token',
  jwksUrl: 'https://www.googleapis.com/oauth2/v3/certs',
};

function parseSso(
  read: (name: ServerEnvVar) => string | undefined,
  publicUrl: string | undefined,
): SsoConfig | undefined {
  const explicit = nonEmpty(read('SSO_PROVIDER'))?.toLowerCase();
  const provider =
    explicit ??
    (nonEmpty(read('GOOGLE_OAUTH_CLIENT_ID'))
      ? 'google'
      : nonEmpty(read('SSO_CLIENT_ID'))
        ? 'oidc'
        : undefined);
  if (provider === undefined || provider === 'none' || provider === 'off') return undefined;
  if (provider !== 'google' && provider !== 'oidc') {
    throw new ConfigError(`SSO_PROVIDER must be google or oidc, got ${JSON.stringify(explicit)}`);
  }
  const google = provider === 'google';
  const need = (name: string, value: string | undefined): string => {
    if (value === undefined)
      throw new ConfigError(`${name} is required when SSO_PROVIDER=${provider}`);
    return value;
  };
  const url = (name: ServerEnvVar): string | undefined => {
    const value = nonEmpty(read(name));
    if (value !== undefined && !/^https?:\/\/[^/]+/.test(value)) {
      throw new ConfigError(`${name} must be an http(s) URL, got ${JSON.stringify(value)}`);
    }
    return value?.replace(/\/+$/, '');
  };
  const list = (name: ServerEnvVar): string[] =>
    (nonEmpty(read(name)) ?? '')
      .split(',')
      .map((v) => v.trim().toLowerCase())
      .filter((v) => v !== '');
  const prefix = google ? 'GOOGLE_OAUTH_' : 'SSO_';
  const clientId = need(`${prefix}CLIENT_ID`, nonEmpty(read(`${prefix}CLIENT_ID`)));
  const clientSecret = need(`${prefix}CLIENT_SECRET`, nonEmpty(read(`${prefix}CLIENT_SECRET`)));
  const redirectUri =
    url(`${prefix}REDIRECT_URI`) ?? (publicUrl ? `${publicUrl}/login/callback` : undefined);
  const cookieSecret = need('SSO_COOKIE_SECRET', nonEmpty(read('SSO_COOKIE_SECRET')));
  if (cookieSecret.length < 32) {
    throw new ConfigError(
      'SSO_COOKIE_SECRET must be at least 32 characters (e.g. openssl rand -hex 32)',
    );
  }
  const issuer = url('SSO_ISSUER') ?? (google ? GOOGLE.issuer : undefined);
  const authorizeUrl = url('SSO_AUTHORIZE_URL') ?? (google ? GOOGLE.authorizeUrl : undefined);
  const tokenUrl = url('SSO_TOKEN_URL') ?? (google ? GOOGLE.tokenUrl : undefined);
  if (issuer === undefined && (authorizeUrl === undefined || tokenUrl === undefined)) {
    throw new ConfigError(
      'SSO needs SSO_ISSUER (for discovery) or SSO_AUTHORIZE_URL and SSO_TOKEN_URL',
    );
  }
  const allowedDomains = [
    ...list('SSO_ALLOWED_DOMAINS'),
    ...(google ? list('GOOGLE_OAUTH_HOSTED_DOMAIN') : []),
  ];
  const allowedEmails = list('SSO_ALLOWED_EMAILS');
  const adminEmails = list('SSO_ADMIN_EMAILS');
  if (allowedDomains.length + allowedEmails.length + adminEmails.length === 0) {
    throw new ConfigError(
      'SSO needs an allow-list: set SSO_ALLOWED_DOMAINS, SSO_ALLOWED_EMAILS or SSO_ADMIN_EMAILS' +
        (google ? ' (or GOOGLE_OAUTH_HOSTED_DOMAIN)' : ''),
    );
  }
  return {
    provider,
    clientId,
    clientSecret,
    redirectUri: need(`${prefix}REDIRECT_URI (or EPOCH_PUBLIC_URL)`, redirectUri),
    issuer,
    authorizeUrl,
    tokenUrl,
    userinfoUrl: url('SSO_USERINFO_URL'),
    jwksUrl: url('SSO_JWKS_URL') ?? (google && !url('SSO_ISSUER') ? GOOGLE.jwksUrl : undefined),
    logoutUrl: url('SSO_LOGOUT_URL'),
    scopes: (nonEmpty(read('SSO_SCOPES')) ?? 'openid profile email')
      .split(/[\s,]+/)
      .filter(Boolean),
    allowedDomains,
    allowedEmails,
    adminEmails,
    cookieSecret,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** `:4300`, `4300`, `127.0.0.1:4300`, `[::1]:4300`, `localhost:4300`. */
export function parseAddr(addr: string): { host: string | undefined; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*))?:?(\d+)$/.exec(addr.trim());
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(
      `EPOCH_ADDR/--addr must look like ":4300" or "127.0.0.1:4300", got ${JSON.stringify(addr)}`,
    );
  }
  return { host: match[1] ?? (match[2] || undefined), port };
}

function parseBool(name: string, value: string | undefined, fallback: boolean): boolean {
  const v = nonEmpty(value)?.toLowerCase();
  if (v === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

const byteUnits: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Byte sizes: `4194304`, `4MiB`, `4m`, `1TiB`. */
export function parseBytes(name: string, value: string | undefined, fallback: number): number {
  const v = nonEmpty(value);
  if (v === undefined) return fallback;
  const match = /^(\d+)\s*([a-z]*)$/i.exec(v);
  const unit = byteUnits[match?.[2]?.toLowerCase() ?? 'x'];
  if (!match || unit === undefined || Number(match[1]) <= 0) {
    throw new ConfigError(
      `${name} must be a positive size like 4MiB, got ${JSON.stringify(value)}`,
    );
  }
  return Number(match[1]) * unit;
}

/** A positive whole number. */
function parseCount(name: string, value: string | undefined, fallback: number): number {
  const v = nonEmpty(value);
  if (v === undefined) return fallback;
  if (!/^\d{1,6}$/.test(v) || Number(v) < 1) {
    throw new ConfigError(`${name} must be a positive whole number, got ${JSON.stringify(value)}`);
  }
  return Number(v);
}

const durationUnits: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Durations: `0`, `90s`, `15m`, `1h`, `2d` (a bare number is seconds). */
export function parseDuration(name: string, value: string | undefined, fallback: number): number {
  const v = nonEmpty(value);
  if (v === undefined) return fallback;
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(v);
  if (!match)
    throw new ConfigError(
      `${name} must be a duration like 90s or 1h, got ${JSON.stringify(value)}`,
    );
  return Number(match[1]) * (durationUnits[match[2] ?? 's'] ?? 1000);
}

function parseLogLevel(value: string | undefined): ServerConfig['logLevel'] {
  const v = nonEmpty(value)?.toLowerCase() ?? 'info';
  if (v === 'debug' || v === 'info' || v === 'warn' || v === 'error' || v === 'silent') return v;
  throw new ConfigError(
    `EPOCH_LOG_LEVEL must be debug, info, warn, error or silent, got ${JSON.stringify(value)}`,
  );
}

/** Where the S3 settings file is looked for when `EPOCH_S3_ENV_FILE` is not set (upstream's). */
export const DEFAULT_S3_ENV_FILE = '~/.config/epoch/s3.env';

/** The variable that sets each S3 setting, for messages. */
const S3_VARS: Record<S3Setting, ServerEnvVar> = {
  endpoint: 'EPOCH_S3_ENDPOINT',
  secure: 'EPOCH_S3_SECURE',
  accessKey: 'EPOCH_S3_ACCESS_KEY',
  secretKey: 'EPOCH_S3_SECRET_KEY',
  bucket: 'EPOCH_S3_BUCKET',
  region: 'EPOCH_S3_REGION',
  prefix: 'EPOCH_S3_PREFIX',
};

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
 * a `ConfigError` naming the variable when the configuration is incomplete or invalid.
 */
export function loadS3Config(env: NodeJS.ProcessEnv = process.env): S3Config | undefined {
  const read = s3Variables(env);
  const settings: S3Settings = {
    endpoint: read('EPOCH_S3_ENDPOINT')?.trim(),
    accessKey: read('EPOCH_S3_ACCESS_KEY')?.trim(),
    secretKey: read('EPOCH_S3_SECRET_KEY')?.trim(),
    bucket: read('EPOCH_S3_BUCKET')?.trim(),
  };
  if (!settings.endpoint && !settings.accessKey && !settings.secretKey && !settings.bucket) {
    return undefined;
  }
  // Checked in upstream's order: missing settings and the bucket name before EPOCH_S3_SECURE.
  const secure = settle(() => parseS3Secure(read('EPOCH_S3_SECURE')));
  let config: S3Config;
  try {
    config = resolveS3Config({
      ...settings,
      secure: secure.value,
      region: read('EPOCH_S3_REGION')?.trim() || undefined,
      prefix: read('EPOCH_S3_PREFIX'),
    });
  } catch (err) {
    if (!(err instanceof S3ConfigError)) throw err;
    const first = err.problem === 'missing' || err.setting === 'bucket';
    throw (!first && secure.error) || new ConfigError(s3Problem(err), { cause: err });
  }
  if (secure.error) throw secure.error;
  return config;
}

/**
 * Reads the variables from the environment, and from the env file when the endpoint, access key
 * or bucket is missing there (the environment wins).
 */
function s3Variables(env: NodeJS.ProcessEnv): (name: ServerEnvVar) => string | undefined {
  const vars: Record<string, string | undefined> = { ...env };
  if (!vars.EPOCH_S3_ENDPOINT || !vars.EPOCH_S3_ACCESS_KEY || !vars.EPOCH_S3_BUCKET) {
    for (const [name, value] of Object.entries(readS3EnvFile(env))) {
      if (!vars[name]) vars[name] = value;
    }
  }
  return (name) => vars[name];
}

/** The value `fn` returns, or the error it throws, to report later. */
function settle<T>(fn: () => T): { value?: T; error?: unknown } {
  try {
    return { value: fn() };
  } catch (error) {
    return { error };
  }
}

function parseS3Secure(value: string | undefined): boolean | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`EPOCH_S3_SECURE must be true or false, not ${JSON.stringify(value)}`);
}

/** The message for a setting `resolveS3Config` refused, naming the variable that set it. */
function s3Problem(err: S3ConfigError): string {
  const name = S3_VARS[err.setting];
  const value = JSON.stringify(err.value);
  switch (err.problem) {
    case 'missing': {
      const missing = err.missing.map((setting) => S3_VARS[setting]);
      return (
        `S3 storage is partly configured: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set ` +
        '(set all of EPOCH_S3_ENDPOINT, EPOCH_S3_ACCESS_KEY, EPOCH_S3_SECRET_KEY and EPOCH_S3_BUCKET, or none for the filesystem store)'
      );
    }
    case 'scheme': {
      const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(err.value ?? '')?.[1]?.toLowerCase();
      return `${name} must use http or https, not ${scheme}`;
    }
    case 'path':
      return `${name} must be a host (and port) only, without a path: ${value}`;
    case 'credentials':
      return `${name} must not contain credentials; use EPOCH_S3_ACCESS_KEY`;
    default:
      if (err.setting === 'bucket') return `${name} is not a valid bucket name: ${value}`;
      if (err.setting === 'region') return `${name} is not a valid region: ${value}`;
      if (err.setting === 'prefix') return `${name} is not a valid key prefix: ${value}`;
      return `${name} is not a valid host or URL: ${value}`;
  }
}

/**
 * The `KEY=VALUE` pairs of the S3 settings file. A missing default file is fine; a missing file
 * that `EPOCH_S3_ENV_FILE` names explicitly is a configuration error.
 */
function readS3EnvFile(env: NodeJS.ProcessEnv): Record<string, string> {
  const explicit = env.EPOCH_S3_ENV_FILE?.trim();
  const home = env.HOME || homedir();
  const file = (explicit || DEFAULT_S3_ENV_FILE).replace(/^~(?=$|\/)/, home);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (!explicit) return {};
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`EPOCH_S3_ENV_FILE names a file that cannot be read: ${reason}`);
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
