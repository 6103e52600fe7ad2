import type { Command } from 'commander';
import { onServerHost } from '../support/server-host.js';

interface ReindexOptions {
  dataDir?: string;
  dsn?: string;
  json?: boolean;
}

/**
 * `epoch reindex`: rebuild or repair the index from the object store alone (the storage is the
 * truth). Safe while a server runs against the same storage and index.
 */
export function registerReindex(program: Command): void {
  program
    .command('reindex')
    .description('rebuild or repair the index from storage (safe while the server runs)')
    .option('--data-dir <dir>', 'data directory for blobs, index and spool (env EPOCH_DATA_DIR)')
    .option('--dsn <url>', 'index database, mysql://user:pass@host:3306/db (env EPOCH_DSN)')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      `
Storage and index are chosen exactly as for \`epoch serve\` (same flags and EPOCH_* env).

Examples:
  epoch reindex --data-dir /var/lib/epoch
  EPOCH_DSN=mysql://epoch:secret@db:3306/epoch epoch reindex --json`,
    )
    .action((opts: ReindexOptions) =>
      onServerHost('reindex', opts, { storage: true }, async ({ server, log, index, store }) => {
        const { Registry } = await import('@epoch/registry');
        const report = await server.reconcileIndex(new Registry(store), index, log);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        } else {
          const { repositories: r, tags: t, manifests: m, links: l, blobs: b } = report;
          process.stdout.write(
            `${[
              `repositories  +${r.added} -${r.removed}`,
              `tags          +${t.added} ~${t.updated} -${t.removed}`,
              `manifests     +${m.added} ~${m.updated} -${m.removed}`,
              `links         +${l.added} -${l.removed}`,
              `blobs         +${b.added} ~${b.updated}`,
              `errors        ${report.errors.length}`,
              ...report.errors.map((e) => `  ${e.repository ?? ''} ${e.key ?? ''}: ${e.message}`),
            ].join('\n')}\n`,
          );
        }
      }),
    );
}
