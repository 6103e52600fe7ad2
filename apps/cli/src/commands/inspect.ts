import { classify, type ImageIndex, type ImageManifest, manifestTotalSize } from '@epoch/oci';
import type { Command } from 'commander';
import { fetchManifest } from '../support/manifest.js';
import { formatBytes } from '../support/progress.js';
import { resolveTarget } from '../support/target.js';

const CONFIG_LIMIT = 1024 * 1024;

/** `epoch inspect REF`: kind, sizes, layers, config. */
export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('show what a reference is: kind, sizes, layers, config')
    .argument('<ref>', 'NAME[:TAG|@DIGEST], optionally prefixed by HOST[:PORT]/')
    .option('--json', 'print JSON (reference, digest, kind, size, manifest, config)')
    .addHelpText(
      'after',
      `
Examples:
  epoch inspect myvm:latest
  epoch inspect 127.0.0.1:5000/library/alpine@sha256:… --json`,
    )
    .action(async (value: string, opts: { json?: boolean }) => {
      const target = await resolveTarget(value);
      try {
        const m = await fetchManifest(target);
        const kind = classify(m.parsed);
        // An index's size here is that of its child manifests, not of their blobs (that would
        // take one request per child).
        const size =
          m.parsed.kind === 'index'
            ? (m.parsed.manifest as ImageIndex).manifests.reduce((sum, d) => sum + d.size, 0)
            : manifestTotalSize(m.parsed.manifest as ImageManifest);
        let config: unknown;
        if (m.parsed.kind === 'manifest') {
          const desc = (m.parsed.manifest as ImageManifest).config;
          if (desc.size <= CONFIG_LIMIT && desc.mediaType.endsWith('json')) {
            const chunks: Buffer[] = [];
            for await (const c of target.client.getBlob(target.ref.name, desc.digest, {
              size: desc.size,
            })) {
              chunks.push(c as Buffer);
            }
            try {
              config = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              config = undefined;
            }
          }
        }
        const report = {
          reference: target.display,
          digest: m.digest,
          mediaType: m.mediaType,
          kind,
          size,
          manifest: JSON.parse(m.bytes.toString('utf8')) as unknown,
          ...(config !== undefined ? { config } : {}),
        };
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          return;
        }
        const lines = [
          `reference  ${report.reference}`,
          `digest     ${m.digest}`,
          `media type ${m.mediaType}`,
          `kind       ${kind}`,
          `size       ${formatBytes(size)} (${size} bytes)`,
        ];
        if (m.parsed.kind === 'manifest') {
          const manifest = m.parsed.manifest as ImageManifest;
          lines.push(`config     ${manifest.config.mediaType} ${manifest.config.digest}`, 'layers');
          for (const l of manifest.layers) {
            const title = l.annotations?.['org.opencontainers.image.title'] ?? '';
            lines.push(`  ${l.digest}  ${String(l.size).padStart(12)}  ${l.mediaType}  ${title}`);
          }
        } else {
          lines.push('manifests');
          for (const d of (m.parsed.manifest as ImageIndex).manifests) {
            const p = d.platform ? `${d.platform.os}/${d.platform.architecture}` : '';
            lines.push(`  ${d.digest}  ${String(d.size).padStart(8)}  ${p}`);
          }
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        await target.client.close();
      }
    });
}
