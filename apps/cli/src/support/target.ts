import { formatReference, OciValidationError, parseReference, type Reference } from '@epoch/oci';
import { type Credentials, RegistryClient } from '@epoch/registry/client';
import { caCert as caCertOf } from '../config.js';
import { savedLogin } from './credentials.js';
import { CliError, ExitCode } from './errors.js';

/** Default `EPOCH_SERVER`. */
export const DEFAULT_SERVER = 'http://127.0.0.1:4300';

/** A parsed reference and a client for the registry it names. */
export interface Target {
  ref: Reference;
  client: RegistryClient;
  /** The reference as written back, with the registry host, for messages. */
  display: string;
}

/** `EPOCH_SERVER`, normalised (no trailing slash). */
export function serverUrl(env: NodeJS.ProcessEnv = process.env): string {
  const raw = env.EPOCH_SERVER || DEFAULT_SERVER;
  const withScheme = /^https?:\/\//.test(raw) ? raw : `http://${raw}`;
  return withScheme.replace(/\/+$/, '');
}

function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || name.startsWith('127.') || name === '[::1]';
}

/**
 * The base URL for a registry host: `EPOCH_SERVER` when it is that host; plain HTTP for
 * loopback hosts (as Docker allows); HTTPS otherwise.
 */
export function urlForHost(host: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const server = serverUrl(env);
  if (host === undefined || host === new URL(server).host) return server;
  return `${isLoopback(host) ? 'http' : 'https'}://${host}`;
}

/**
 * The credentials the CLI sends to a registry: EPOCH_REGISTRY_TOKEN for EPOCH_SERVER, else what
 * `epoch login` saved for the host, else none.
 */
export async function credentialsFor(
  url: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Credentials | undefined> {
  if (env.EPOCH_REGISTRY_TOKEN && url === serverUrl(env))
    return { token: env.EPOCH_REGISTRY_TOKEN };
  return savedLogin(new URL(url).host, env);
}

/** A client for a registry base URL with the credentials that apply to it. */
export async function clientFor(
  url: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RegistryClient> {
  const credentials = await credentialsFor(url, env);
  const caCert = caCertOf(env);
  return new RegistryClient({
    url,
    userAgent: 'epoch-cli',
    // Two chunks are held per upload (one filling, one in flight): 8 MiB keeps the CLI well
    // under its memory target while each PATCH is still large.
    chunkSize: 8 * 1024 * 1024,
    ...(credentials ? { credentials } : {}),
    ...(caCert ? { caCert } : {}),
  });
}

/**
 * Parses a reference (`[host[:port]/]name[:tag][@digest]`) and opens a client for its
 * registry. Without a host the reference is on `EPOCH_SERVER`.
 */
export async function resolveTarget(
  value: string,
  env: NodeJS.ProcessEnv = process.env,
  options: { defaultTag?: string | null } = {},
): Promise<Target> {
  let ref: Reference;
  try {
    ref = parseReference(value, {
      defaultTag: options.defaultTag === undefined ? 'latest' : options.defaultTag,
    });
  } catch (err) {
    if (err instanceof OciValidationError) throw new CliError(err.message, ExitCode.usage);
    throw err;
  }
  const client = await clientFor(urlForHost(ref.host, env), env);
  const display = formatReference({ ...ref, host: client.host });
  return { ref, client, display };
}
