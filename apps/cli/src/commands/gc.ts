import { Registry } from '@epoch/registry';
import type { Command } from 'commander';
import { onServerHost } from '../support/server-host.js';

interface GcCommandOptions {
  dataDir?: string;
  dsn?: string;
  dryRun?: boolean;
  json?: boolean;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * `epoch gc`: online garbage collection and retention, against the storage and index
 * `epoch serve` uses. Safe while servers run: one run at a time (a lock in the index), and
 * nothing younger than `EPOCH_GC_DELAY` is touched.
 */
export function registerGc(program: Command): void {
  program
    .command('gc')
    .description(
      'delete unreferenced manifests and blobs and apply retention (safe while the server runs)',
    )
    .option('--data-dir <dir>', 'data directory for blobs, index and spool (env EPOCH_DATA_DIR)')
    .option('--dsn <url>', 'index database, mysql://user:pass@host:3306/db (env EPOCH_DSN)')
    .option('--dry-run', 'report what would be deleted; change nothing')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      `
Storage and index are chosen exactly as for \`epoch serve\` (same flags and EPOCH_* env).
EPOCH_GC_DELAY (default 1h; e.g. 0, 90s, 1h) is the grace period: nothing pushed, linked or
written more recently is collected. A run first reconciles the index with storage (not in a
dry run). Retention policies are managed with GET/PUT /api/retention.

Examples:
  epoch gc --dry-run
  EPOCH_GC_DELAY=24h epoch gc --json`,
    )
    .action((opts: GcCommandOptions) =>
      onServerHost('gc', opts, { storage: true }, async ({ server, config, log, index, store }) => {
        const { collectGarbage, reconcileIndex } = server;
        const registry = new Registry(store);
        const report = await collectGarbage(registry, index, {
          delayMs: config.gcDelayMs,
          actor: 'gc:cli',
          log,
          ...(opts.dryRun ? { dryRun: true } : {}),
          reconcile: () => reconcileIndex(registry, index, log),
        });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        } else {
          const verb = report.dryRun ? 'would delete' : 'deleted';
          process.stdout.write(
            `${[
              `${verb}:`,
              `  tags       ${report.tags.count}`,
              `  manifests  ${report.manifests.count}`,
              `  links      ${report.links.count}`,
              `  blobs      ${report.blobs.count} (${mib(report.blobs.bytes)})`,
              `  orphans    ${report.orphans.count} (${mib(report.orphans.bytes)})`,
              `reclaimed    ${mib(report.bytesReclaimed)}${report.dryRun ? ' (dry run)' : ''}`,
              `took         ${(report.durationMs / 1000).toFixed(1)} s`,
            ].join('\n')}\n`,
          );
        }
      }).catch(async (err: unknown) => {
        const { GcBusyError } = await import('@epoch/server');
        if (!(err instanceof GcBusyError)) throw err;
        process.stderr.write(`epoch gc: ${err.message}\n`);
        process.exitCode = 1;
      }),
    );
}
