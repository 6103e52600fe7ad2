import {
  type Backend,
  backends,
  type TestServer as GenericTestServer,
  testServerStarter,
} from '@epoch/test-support/test-server';
import { loadConfig } from '../../src/config.js';
import { type RunningServer, startServer } from '../../src/server.js';

export { type Backend, backends, startBackendS3 } from '@epoch/test-support/test-server';

/** A real Epoch server from this package's sources, in this process. */
export type TestServer = GenericTestServer<RunningServer>;

/**
 * Starts a real Epoch server on a random loopback port over the given storage backend.
 * `options.s3`: an S3 server the caller started (and closes); `env` may point
 * `EPOCH_S3_ENDPOINT` at a proxy in front of it.
 */
export const startTestServer = testServerStarter({ loadConfig, startServer });

/**
 * How a suite's client authenticates: `anonymous`, the out-of-the-box mode where programs on this
 * machine may push without credentials; `token`, a database token (which ends that mode), as a
 * production deployment runs.
 */
export type AuthMode = 'anonymous' | 'token';

/**
 * The `/v2/` spec suites' matrix: every backend in the out-of-the-box anonymous mode, and the
 * filesystem and RGW (when configured) with a token.
 */
export const specCases: { backend: Backend; auth: AuthMode }[] = [
  ...backends.map((backend) => ({ backend, auth: 'anonymous' as const })),
  ...backends
    .filter((backend) => backend !== 's3')
    .map((backend) => ({ backend, auth: 'token' as const })),
];

/**
 * The headers a suite's client sends in this mode: none, or a fresh admin token as Basic
 * credentials, as docker and skopeo send after `login`.
 */
export async function clientHeaders(
  t: TestServer,
  auth: AuthMode,
): Promise<Record<string, string>> {
  if (auth === 'anonymous') return {};
  const secret = await t.token(['admin'], '*');
  return { Authorization: `Basic ${Buffer.from(`_token:${secret}`).toString('base64')}` };
}
