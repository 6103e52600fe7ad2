import { userInfo } from 'node:os';
import type * as Server from '@epoch/server';
import {
  type Store,
  TOKEN_SCOPES,
  type TokenRuleCode,
  TokenRuleError,
  type TokenScope,
} from '@epoch/store';
import { type Command, Option } from 'commander';
import { CliError, ExitCode } from '../support/errors.js';
import { onServerHost } from '../support/server-host.js';

/** The flag that carries what each token rule is about. */
const FLAG_OF: Record<TokenRuleCode, string> = {
  BAD_NAME: '--name',
  BAD_SCOPES: '--scope',
  BAD_PATTERN: '--repo',
  BAD_EXPIRY: '--expires',
};

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
          .choices(TOKEN_SCOPES)
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
      withIndex(opts, async (index, { parseDuration }) => {
        const expiresAt = opts.expires
          ? new Date(Date.now() + parseDuration('--expires', opts.expires, 0))
          : undefined;
        const { token: created, plaintext } = await index.tokens
          .create({
            name: opts.name,
            createdBy: `cli:${userInfo().username}`,
            scopes: opts.scope,
            repoPattern: opts.repo,
            ...(expiresAt ? { expiresAt } : {}),
          })
          .catch((err: unknown) => {
            if (err instanceof TokenRuleError) {
              throw new CliError(
                `token create ${FLAG_OF[err.code]}: ${err.message}`,
                ExitCode.usage,
              );
            }
            throw err;
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
        const tokens = await index.tokens.list();
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
        if (!(await index.tokens.revoke(Number(id), `cli:${userInfo().username}`))) {
          process.stderr.write(`epoch token revoke: no active token ${id}\n`);
          process.exitCode = 2;
          return;
        }
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
