import { readFileSync } from 'node:fs';

/**
 * Settings the CLI reads from its environment for the libraries it drives, which read none
 * themselves: the cocoon binary and the extra CA. (Registry addresses and credentials are read in
 * `support/target.ts` and `support/credentials.ts`; `epoch serve` and the server-host commands
 * use `@epoch/server`'s `loadConfig` and `loadS3Config`.)
 */

/** `EPOCH_COCOON_BINARY`, or `cocoon` on the PATH. */
export function cocoonBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.EPOCH_COCOON_BINARY || 'cocoon';
}

/** Where {@link cocoonBinary} looked, for messages: the variable when it is set. */
export function cocoonBinaryOrigin(env: NodeJS.ProcessEnv = process.env): string {
  const binary = cocoonBinary(env);
  return env.EPOCH_COCOON_BINARY ? `EPOCH_COCOON_BINARY=${binary}` : `\`${binary}\` on the PATH`;
}

/** The PEM file `EPOCH_CA_CERT` names (an extra CA to trust), if it is set. */
export function caCert(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  return env.EPOCH_CA_CERT ? readFileSync(env.EPOCH_CA_CERT) : undefined;
}
