import {
  RegistryDeniedError,
  RegistryNetworkError,
  RegistryUnauthorizedError,
} from '@epoch/registry/client';
import { credentialsFor, serverUrl } from './target.js';

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'timed out connecting',
};

/** The first known network error code in an error's causes (AggregateErrors included). */
function networkCode(err: unknown, depth = 0): string | undefined {
  if (!(err instanceof Error) || depth > 5) return undefined;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && code in NETWORK_CODES) return code;
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const found = networkCode(inner, depth + 1);
      if (found) return found;
    }
  }
  return networkCode(err.cause, depth + 1);
}

/**
 * The message `epoch` prints for a failure. Most errors speak for themselves; these are reworded
 * because their raw form points the wrong way: a refused connection names a socket error rather
 * than the setting that chose the address, and a registry that wants credentials nobody sent
 * answers as if a token lacked a scope.
 */
export async function explain(err: unknown, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const raw = err instanceof Error ? err.message : String(err);
  if (err instanceof RegistryNetworkError) return unreachable(err, env) ?? raw;
  if (err instanceof RegistryUnauthorizedError || err instanceof RegistryDeniedError) {
    return (await withoutCredentials(err.url, raw, env)) ?? raw;
  }
  return raw;
}

/** A registry that cannot be reached, with the setting that chose its address. */
function unreachable(err: RegistryNetworkError, env: NodeJS.ProcessEnv): string | undefined {
  const code = networkCode(err.cause);
  if (code === undefined) return undefined;
  const origin = new URL(err.url).origin;
  const what = `cannot reach the registry at ${origin} (${NETWORK_CODES[code]}, ${code})`;
  if (origin !== serverUrl(env)) return `${what}: is it running, and is the address right?`;
  return env.EPOCH_SERVER
    ? `${what}, the address EPOCH_SERVER gives: is the registry running there? Otherwise set EPOCH_SERVER to its URL`
    : `${what}, the default address (EPOCH_SERVER is not set): start one with \`epoch serve\`, or set EPOCH_SERVER to your registry's URL`;
}

/**
 * A refusal of a request that carried no credentials: says that none were sent and how to give
 * them. Undefined when credentials were sent (the registry's answer then stands).
 */
async function withoutCredentials(
  url: string,
  raw: string,
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  const origin = new URL(url).origin;
  try {
    if ((await credentialsFor(origin, env)) !== undefined) return undefined;
  } catch {
    return undefined;
  }
  const isServer = origin === serverUrl(env);
  const login = isServer
    ? 'epoch login --token-stdin'
    : `epoch login ${new URL(origin).host} --token-stdin`;
  return [
    `${origin} requires credentials for this, and none were sent.`,
    `Give a token with \`${login} < token.txt\` (saved for later commands)`,
    isServer
      ? 'or in EPOCH_REGISTRY_TOKEN; an admin makes one with `epoch token create --name NAME --scope push` on the server host.'
      : 'or `-u USER --password-stdin`.',
    `(The registry said: ${raw})`,
  ].join(' ');
}
