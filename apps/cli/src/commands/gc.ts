import { Registry } from '@epoch/registry';
import type { GcReport } from '@epoch/server';
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

/** `1h`, `90s`, `2d`: the grace period as EPOCH_GC_DELAY would spell it. */
function duration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms === 0 ? '0' : `${ms}ms`;
}

/** `epoch gc`'s report as text: what went (or would go), and what the grace period kept. */
function formatReport(report: GcReport): string {
  const verb = report.dryRun ? 'would delete' : 'deleted';
  const grace = `${duration(report.delayMs)}, EPOCH_GC_DELAY`;
  const { held } = report;
  const lines = [
    `${verb}:`,
    `  tags       ${report.tags.count}`,
    `  manifests  ${report.manifests.count}`,
    `  links      ${report.links.count}`,
    `  blobs      ${report.blobs.count} (${mib(report.blobs.bytes)})`,
    `  orphans    ${report.orphans.count} (${mib(report.orphans.bytes)})`,
    `reclaimed    ${mib(report.bytesReclaimed)}${report.dryRun ? ' (dry run)' : ''}`,
  ];
  if (held.until === null) {
    lines.push(`held back    nothing younger than the grace period (${grace})`);
  } else {
    const minutes = Math.max(0, Math.ceil((Date.parse(held.until) - Date.now()) / 60_000));
    lines.push(
      `held back by the grace period (${grace}): garbage, but too young`,
      `  manifests  ${held.manifests.count} (${mib(held.manifests.bytes)})`,
      `  blobs      ${held.blobs.count} (${mib(held.blobs.bytes)})`,
      `  orphans    ${held.orphans.count} (${mib(held.orphans.bytes)})`,
      `  until      ${held.until} (in ${minutes} min); a run then collects them, or now with EPOCH_GC_DELAY=0`,
    );
  }
  lines.push(`took         ${(report.durationMs / 1000).toFixed(1)} s`);
  return lines.join('\n');
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
written more recently is collected. The report lists what it held back and until when (JSON:
"held", with "until" per item and overall). A run first reconciles the index with storage (not
in a dry run). Retention policies are managed with GET/PUT /api/retention.

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
        process.stdout.write(
          opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`,
        );
      }).catch(async (err: unknown) => {
        const { GcBusyError } = await import('@epoch/server');
        if (!(err instanceof GcBusyError)) throw err;
        process.stderr.write(`epoch gc: ${err.message}\n`);
        process.exitCode = 1;
      }),
    );
}
