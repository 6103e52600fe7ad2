import { text } from 'node:stream/consumers';
import { RegistryClient, RegistryUnauthorizedError } from '@epoch/registry/client';
import type { Command } from 'commander';
import { caCert as caCertOf } from '../config.js';
import { removeLogin, type SavedLogin, saveLogin } from '../support/credentials.js';
import { CliError, ExitCode } from '../support/errors.js';
import { serverUrl, urlForHost } from '../support/target.js';

interface LoginOptions {
  token?: string;
  tokenStdin?: boolean;
  username?: string;
  password?: string;
  passwordStdin?: boolean;
}

function registryUrl(server: string | undefined): string {
  if (!server) return serverUrl();
  if (/^https?:\/\//.test(server)) return server.replace(/\/+$/, '');
  return urlForHost(server);
}

/** `epoch login [SERVER]` and `epoch logout [SERVER]`. */
export function registerLogin(program: Command): void {
  program
    .command('login')
    .description(
      'check and save credentials for a registry (~/.config/epoch/credentials.json, mode 0600)',
    )
    .argument('[server]', 'registry URL or HOST[:PORT] (default: EPOCH_SERVER)')
    .option('--token <token>', 'an Epoch registry token')
    .option('--token-stdin', 'read the token from stdin')
    .option('-u, --username <user>', 'user name (Basic or token-realm login)')
    .option('-p, --password <password>', 'password')
    .option('--password-stdin', 'read the password from stdin')
    .addHelpText(
      'after',
      `
The credentials are tried against the registry (GET /v2/, with the token flow) before they are
saved. The file lives in $XDG_CONFIG_HOME/epoch (default ~/.config/epoch).

Examples:
  epoch login --token-stdin < token.txt
  epoch login registry.example.com --token ept_…
  echo "$GHCR_PAT" | epoch login ghcr.io -u me --password-stdin`,
    )
    .action(async (server: string | undefined, opts: LoginOptions) => {
      const url = registryUrl(server);
      let login: SavedLogin;
      if (opts.username !== undefined) {
        const password = opts.passwordStdin ? (await text(process.stdin)).trim() : opts.password;
        if (!password)
          throw new CliError('a password is required (-p or --password-stdin)', ExitCode.usage);
        login = { username: opts.username, password };
      } else {
        const token = opts.tokenStdin ? (await text(process.stdin)).trim() : opts.token;
        if (!token)
          throw new CliError('a token is required (--token or --token-stdin)', ExitCode.usage);
        login = { token };
      }
      const caCert = caCertOf();
      const client = new RegistryClient({ url, credentials: login, ...(caCert ? { caCert } : {}) });
      try {
        await client.ping();
      } catch (err) {
        if (err instanceof RegistryUnauthorizedError) {
          throw new CliError(`${url} refused the credentials`);
        }
        throw err;
      } finally {
        await client.close();
      }
      await saveLogin(new URL(url).host, login);
      process.stderr.write(`logged in to ${url}\n`);
    });

  program
    .command('logout')
    .description('forget the saved credentials of a registry')
    .argument('[server]', 'registry URL or HOST[:PORT] (default: EPOCH_SERVER)')
    .addHelpText('after', '\nExamples:\n  epoch logout\n  epoch logout registry.example.com')
    .action(async (server: string | undefined) => {
      const url = registryUrl(server);
      const removed = await removeLogin(new URL(url).host);
      process.stderr.write(removed ? `logged out of ${url}\n` : `not logged in to ${url}\n`);
    });
}
