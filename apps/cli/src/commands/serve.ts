import type { ServerConfig } from '@epoch/server';
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
      let config: ServerConfig;
      try {
        config = loadConfig(process.env, opts);
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`epoch serve: ${err.message}\n`);
          process.exitCode = 1;
          return;
        }
        throw err;
      }
      tuneHeapForUploads();
      const server = await startServer(config);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          server.close().then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
