import { RegistryNotFoundError } from '@epoch/registry/client';

/** Exit codes shared by every command. */
export const ExitCode = { ok: 0, failure: 1, notFound: 2, usage: 64 } as const;

/** A failure to report as `epoch: <message>` with a given exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.failure,
  ) {
    super(message);
  }
}

/** The exit code for an error: 2 for anything not found, 1 otherwise. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof RegistryNotFoundError) return ExitCode.notFound;
  return ExitCode.failure;
}

/** Rethrows a not-found error as one naming the reference and server. */
export function notFound(err: unknown, what: string, server: string): never {
  if (err instanceof RegistryNotFoundError) {
    throw new CliError(`${what} not found on ${server}`, ExitCode.notFound);
  }
  throw err;
}
