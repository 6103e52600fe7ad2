import { userInfo } from 'node:os';
import type * as Server from '@epoch/server';
import type { Store, TokenScope } from '@epoch/store';
import { type Command, Option } from 'commander';
import { onServerHost } from '../support/server-host.js';

interface IndexOptions {
  dataDir?: string;
  dsn?: string;
  json?: boolean;
}

interface CreateOptions extends IndexOptions {
  name: string;
  scope: TokenScope[];
  repo: string;
  expires?: string;
}

const SCOPES: readonly TokenScope[] = ['pull', 'push', 'delete', 'admin'];

/**
 * `epoch token create|list|revoke`: manage tokens directly in the index, on the server host. This
 * is how the first admin token is minted: whoever can read the data directory or the DSN already
 * controls the registry, so no credentials are asked for.
 */
export function registerToken(program: Command): void {
  const token = program
    .command('token')
    .description('create, list and revoke access tokens (run on the server host)');

  const indexOptions = (cmd: Command) =>
    cmd
      .option('--data-dir <dir>', 'data directory holding the SQLite index (env EPOCH_DATA_DIR)')
      .option('--dsn <url>', 'index database, mysql://user:pass@host:3306/db (env EPOCH_DSN)')
      .option('--json', 'print JSON');

  indexOptions(
    token
      .command('create')
      .description('create a token and print its secret once')
      .requiredOption('--name <name>', 'what the token is for, e.g. ci or laptop')
      .addOption(
        new Option('--scope <scope...>', 'rights: pull, push, delete, admin (repeatable)')
          .choices(SCOPES)
          .default(['pull']),
      )
      .option('--repo <pattern>', 'repositories it covers, a glob such as team-a/*', '*')
      .option('--expires <duration>', 'lifetime such as 30d or 12h (default: never)'),
  )
    .addHelpText(
      'after',
      `
Examples:
  epoch token create --name admin --scope admin
  epoch token create --name ci --scope push --repo 'team-a/*' --expires 90d
  docker login -u _token -p <printed token> registry.example.com`,
    )
    .action((opts: CreateOptions) =>
      withIndex(opts, async (index, { ConfigError, isRepositoryPattern, parseDuration }) => {
        if (!isRepositoryPattern(opts.repo)) {
          throw new ConfigError(
            `--repo must be a glob over repository names, got ${JSON.stringify(opts.repo)}`,
          );
        }
        const expiresAt = opts.expires
          ? new Date(Date.now() + parseDuration('--expires', opts.expires, 0))
          : undefined;
        const createdBy = `cli:${userInfo().username}`;
        const { token: created, plaintext } = await index.createToken({
          name: opts.name,
          createdBy,
          scopes: opts.scope,
          repoPattern: opts.repo,
          ...(expiresAt ? { expiresAt } : {}),
        });
        await index.appendEvent({
          actor: createdBy,
          action: 'token.create',
          detail: {
            tokenId: created.id,
            name: created.name,
            scopes: created.scopes,
            repoPattern: created.repoPattern,
          },
        });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ ...created, token: plaintext }, null, 2)}\n`);
        } else {
          process.stderr.write(
            `created token ${created.id} "${created.name}" (${created.scopes.join(', ')} on ${created.repoPattern}); it is shown only now:\n`,
          );
          process.stdout.write(`${plaintext}\n`);
        }
      }),
    );

  indexOptions(token.command('list').description('list tokens (never their secrets)')).action(
    (opts: IndexOptions) =>
      withIndex(opts, async (index) => {
        const tokens = await index.listTokens();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(tokens, null, 2)}\n`);
          return;
        }
        for (const t of tokens) {
          const state = t.revokedAt
            ? 'revoked'
            : t.expiresAt && t.expiresAt < new Date()
              ? 'expired'
              : 'active';
          process.stdout.write(
            `${t.id}\t${t.name}\t${t.scopes.join(',')}\t${t.repoPattern}\t${state}\t${t.lastUsed?.toISOString() ?? 'never used'}\n`,
          );
        }
      }),
  );

  indexOptions(
    token
      .command('revoke')
      .description('revoke a token (every server stops accepting it within 5 s)'),
  )
    .argument('<id>', 'token id, from `epoch token list`')
    .action((id: string, opts: IndexOptions) =>
      withIndex(opts, async (index, { ConfigError }) => {
        if (!/^\d{1,15}$/.test(id))
          throw new ConfigError(`token id must be a number, got ${JSON.stringify(id)}`);
        if (!(await index.revokeToken(Number(id)))) {
          process.stderr.write(`epoch token revoke: no active token ${id}\n`);
          process.exitCode = 2;
          return;
        }
        await index.appendEvent({
          actor: `cli:${userInfo().username}`,
          action: 'token.revoke',
          detail: { tokenId: Number(id) },
        });
        process.stderr.write(`revoked token ${id}\n`);
      }),
    );
}

/** The index `epoch serve` would use; setting errors (and bad flags) exit 1 naming the command. */
function withIndex(
  opts: IndexOptions,
  fn: (index: Store, server: typeof Server) => Promise<void>,
): Promise<void> {
  return onServerHost('token', opts, { storage: false }, ({ index, server }) => fn(index, server));
}
