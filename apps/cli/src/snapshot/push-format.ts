import { DEFAULT_SNAPSHOT_FORMAT, isSnapshotFormat, type SnapshotFormat } from '@epoch/oci';
import {
  type RegistryClient,
  RegistryDeniedError,
  RegistryHttpError,
  RegistryNotFoundError,
  RegistryProtocolError,
  RegistryUnauthorizedError,
  type RepositorySettingsDocument,
} from '@epoch/registry/client';
import { CliError, ExitCode } from '../support/errors.js';

/** The format a push uses, and why (both go on the push's summary line). */
export interface FormatChoice {
  format: SnapshotFormat;
  /** The flag that chose it, or what the registry said. */
  reason: string;
  /** For stderr before the push, when the choice is a fallback its user may not want. */
  warning?: string;
}

/** The push's format flags: `--incremental`/`--no-incremental` (the last given wins), `--base`. */
export interface FormatFlags {
  incremental?: boolean;
  base?: readonly string[];
}

const CHOOSE = 'choose with --incremental or --no-incremental';

/**
 * The snapshot format of `epoch push`. A flag decides alone: `--incremental` or
 * `--no-incremental`. Without one, the
 * repository's default is asked of the registry's `/api/` (`GET /api/repository-settings/<name>`,
 * answered for a repository that does not exist yet too), and:
 *
 * - an answer is followed; a format this epoch does not know stops the push (a newer server's
 *   format must not turn into another one here);
 * - a registry with no Epoch control API (404: docker-registry, another registry, an older
 *   Epoch; or something that is not Epoch's answer) cannot have a default: the full format,
 *   every registry's and reader's, as before repository defaults existed;
 * - a refusal (401, 403: credentials without `/api/` rights, such as the static
 *   `EPOCH_REGISTRY_TOKEN`, which may push but not read `/api/`) leaves the default unknown: the
 *   full format, as such pushes always were, with a warning saying so and how to choose;
 * - any other failure (a 5xx after the client's retries, an unreachable registry) stops the push
 *   before anything is sent, rather than pushing in a format the repository may not want: the
 *   registry is failing, and the push would most likely fail too.
 *
 * `--base` only works in the incremental format: with `--no-incremental`, or when the choice
 * falls on the full format, it is a usage error (as it was before repository defaults).
 */
export async function choosePushFormat(
  client: RegistryClient,
  repository: string,
  flags: FormatFlags,
): Promise<FormatChoice> {
  const choice = await choose(client, repository, flags.incremental);
  if ((flags.base?.length ?? 0) > 0 && choice.format !== 'incremental') {
    throw new CliError(
      `--base needs the incremental format: add --incremental (this push would be ${choice.format}: ${choice.reason})`,
      ExitCode.usage,
    );
  }
  return choice;
}

async function choose(
  client: RegistryClient,
  repository: string,
  incremental: boolean | undefined,
): Promise<FormatChoice> {
  if (incremental === true) return { format: 'incremental', reason: '--incremental' };
  if (incremental === false) return { format: 'full', reason: '--no-incremental' };
  let settings: RepositorySettingsDocument;
  try {
    settings = await client.repositorySettings(repository);
  } catch (err) {
    return withoutSettings(err, client, repository);
  }
  if (!isSnapshotFormat(settings.defaultFormat)) {
    throw new CliError(
      `the default format of ${repository} on ${client.url} is ${JSON.stringify(settings.defaultFormat)}, which this epoch does not know: upgrade epoch, or ${CHOOSE}`,
    );
  }
  return {
    format: settings.defaultFormat,
    reason: settings.updatedAt ? "the repository's default" : 'no repository default set',
  };
}

/** The choice when the registry did not say (see {@link choosePushFormat}), or the error. */
function withoutSettings(err: unknown, client: RegistryClient, repository: string): FormatChoice {
  if (err instanceof RegistryNotFoundError || err instanceof RegistryProtocolError) {
    return { format: DEFAULT_SNAPSHOT_FORMAT, reason: `no Epoch /api/ at ${client.host}` };
  }
  const where = `${client.url}/api/`;
  if (err instanceof RegistryUnauthorizedError || err instanceof RegistryDeniedError) {
    const status = `${err.status}${err.code ? ` ${err.code}` : ''}`;
    return {
      format: DEFAULT_SNAPSHOT_FORMAT,
      reason: 'repository default unreadable',
      warning: `warning: cannot read the default format of ${repository} from ${where} (${status}): pushing in the ${DEFAULT_SNAPSHOT_FORMAT} format; ${CHOOSE}`,
    };
  }
  if (err instanceof RegistryHttpError) {
    throw new CliError(
      `cannot read the default format of ${repository} from ${where}: ${err.message}. Nothing was pushed: retry, or ${CHOOSE}`,
    );
  }
  throw err;
}
