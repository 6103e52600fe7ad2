import { isSnapshotFormat, SNAPSHOT_FORMATS } from '@epoch/oci';
import {
  type RegistryClient,
  RegistryHttpError,
  RegistryNotFoundError,
  RegistryProtocolError,
  type RepositorySettingsDocument,
} from '@epoch/registry/client';
import type { Command } from 'commander';
import { CliError, ExitCode } from '../support/errors.js';
import { resolveTarget, type Target } from '../support/target.js';

/**
 * `epoch repo show|set-default`: a repository's settings on an Epoch registry (its `/api/`),
 * for now the snapshot format `epoch push` uses when given neither `--incremental` nor
 * `--no-incremental`.
 */
export function registerRepo(program: Command): void {
  const repo = program
    .command('repo')
    .description("show or change a repository's settings (its default snapshot format)");

  repo
    .command('show')
    .description("print a repository's settings")
    .argument('<name>', 'repository, optionally HOST[:PORT]/NAME')
    .option('--json', 'print the settings as JSON')
    .addHelpText(
      'after',
      `
Prints the format \`epoch push\` uses for the repository when given neither --incremental nor
--no-incremental, who set it and when. A repository that nobody configured has the full format;
settings are kept by name, so a repository that does not exist yet has them too.

Examples:
  epoch repo show team/myvm
  epoch repo show registry.example.com/team/myvm --json`,
    )
    .action((name: string, opts: { json?: boolean }) =>
      withRepository(name, async (target) => {
        print(await settingsCall(target, (c) => c.repositorySettings(target.ref.name)), opts);
      }),
    );

  repo
    .command('set-default')
    .description("set the snapshot format a repository's pushes use by default")
    .argument('<name>', 'repository, optionally HOST[:PORT]/NAME')
    .argument('<format>', SNAPSHOT_FORMATS.join(' or '))
    .option('--json', 'print the new settings as JSON')
    .addHelpText(
      'after',
      `
Formats: full (upstream's, one blob per file, read by every epoch and cocoon) or incremental
(8 KiB chunks; only chunks the repository lacks are sent and stored; docs/incremental-snapshots.md).
\`epoch push\` without --incremental or --no-incremental then uses it; either flag still wins.

Needs push rights on the repository (a push token whose pattern covers it, or an admin) and
Epoch's /api/: other registries have no repository defaults. The repository need not exist
yet. The change is recorded in the audit log (GET /api/events).

Examples:
  epoch repo set-default team/myvm incremental
  epoch repo set-default team/myvm full`,
    )
    .action((name: string, format: string, opts: { json?: boolean }) => {
      if (!isSnapshotFormat(format)) {
        throw new CliError(
          `unknown format ${JSON.stringify(format)}: use ${SNAPSHOT_FORMATS.join(' or ')}`,
          ExitCode.usage,
        );
      }
      return withRepository(name, async (target) => {
        const change = { defaultFormat: format };
        print(
          await settingsCall(target, (c) => c.setRepositorySettings(target.ref.name, change)),
          opts,
        );
      });
    });
}

/** Runs `fn` with a client for the repository NAME names (no tag or digest), then closes it. */
async function withRepository(name: string, fn: (target: Target) => Promise<void>): Promise<void> {
  const target = await resolveTarget(name, process.env, { defaultTag: null });
  try {
    if (target.ref.tag || target.ref.digest) {
      throw new CliError(`${name}: give a repository, without a tag or digest`, ExitCode.usage);
    }
    await fn(target);
  } finally {
    await target.client.close();
  }
}

/** A settings call, with the errors a person can act on said plainly. */
async function settingsCall(
  target: Target,
  call: (client: RegistryClient) => Promise<RepositorySettingsDocument>,
): Promise<RepositorySettingsDocument> {
  try {
    return await call(target.client);
  } catch (err) {
    if (err instanceof RegistryNotFoundError || err instanceof RegistryProtocolError) {
      throw new CliError(
        `${target.client.url} has no Epoch control API (/api/): repository settings are an Epoch feature`,
      );
    }
    // The server's own words (`{"error"}`), e.g. a refused format or a missing right.
    if (err instanceof RegistryHttpError && err.status === 400) {
      throw new CliError(err.errors[0]?.message || err.message, ExitCode.usage);
    }
    throw err;
  }
}

function print(settings: RepositorySettingsDocument, opts: { json?: boolean }): void {
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(settings, null, 2)}\n`);
    return;
  }
  const set = settings.updatedAt
    ? `set by ${settings.updatedBy ?? 'someone'} at ${settings.updatedAt}`
    : 'not set: the registry default';
  process.stdout.write(`${settings.name}\tdefault format ${settings.defaultFormat} (${set})\n`);
}
