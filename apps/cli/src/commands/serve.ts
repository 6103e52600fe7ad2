import type { RunningServer, ServerConfig } from '@epoch/server';
import type { Command } from 'commander';

/** `epoch serve`: run the registry until SIGINT/SIGTERM, then shut down gracefully. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'run the registry server (embedded defaults: filesystem + SQLite in ./epoch-data, :4300)',
    )
    .option('--addr <addr>', 'listen address, e.g. :4300 or 127.0.0.1:4300 (env EPOCH_ADDR)')
    .option('--data-dir <dir>', 'data directory for blobs, index and spool (env EPOCH_DATA_DIR)')
    .option('--dsn <url>', 'index database, mysql://user:pass@host:3306/db (env EPOCH_DSN)')
    .addHelpText(
      'after',
      `
Storage is S3 when EPOCH_S3_ENDPOINT, EPOCH_S3_ACCESS_KEY, EPOCH_S3_SECRET_KEY and
EPOCH_S3_BUCKET are set (or found in EPOCH_S3_ENV_FILE), the data directory otherwise.

Examples:
  epoch serve
  epoch serve --addr 127.0.0.1:5000 --data-dir /var/lib/epoch
  EPOCH_S3_ENDPOINT=http://127.0.0.1:9000 EPOCH_S3_BUCKET=epoch epoch serve`,
    )
    .action(async (opts: { addr?: string; dataDir?: string; dsn?: string }) => {
      // Loaded on use: the server's dependencies are heavy, and the client commands start faster.
      const { ConfigError, loadConfig, startServer, tuneHeapForUploads } = await import(
        '@epoch/server'
      );
      let server: RunningServer;
      try {
        const config: ServerConfig = loadConfig(process.env, opts);
        tuneHeapForUploads();
        server = await startServer(config);
      } catch (err) {
        const problem =
          err instanceof ConfigError
            ? err.message
            : listenProblem(err, opts.addr ?? process.env.EPOCH_ADDR ?? ':4300');
        if (problem === undefined) throw err;
        process.stderr.write(`epoch serve: ${problem}\n`);
        process.exitCode = 1;
        return;
      }
      await serveUntilSignalled(server);
    });
}

/** What to tell the user when listening failed for a reason of theirs, else undefined. */
function listenProblem(err: unknown, addr: string): string | undefined {
  const { code, syscall } = err as NodeJS.ErrnoException;
  if (syscall !== 'listen') return undefined;
  const fix = 'choose another address with --addr or EPOCH_ADDR';
  if (code === 'EADDRINUSE') return `${addr} is already in use (another epoch serve?); ${fix}`;
  if (code === 'EACCES') return `not allowed to listen on ${addr}; ${fix}`;
  return undefined;
}

/**
 * Serves until SIGINT or SIGTERM, then logs the shutdown and closes gracefully (exit status 0).
 * A second signal while in-flight requests drain stops at once, with status 1.
 */
function serveUntilSignalled(server: RunningServer): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      const force = (again: NodeJS.Signals) => {
        server.log.warn({ signal: again }, 'stopping without waiting for requests');
        process.exit(1);
      };
      process.once('SIGINT', force);
      process.once('SIGTERM', force);
      server.log.info({ signal }, 'shutting down: no new connections, finishing requests');
      server.close().then(resolve, (err: unknown) => {
        server.log.error({ err }, 'shutdown failed');
        process.exitCode = 1;
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
