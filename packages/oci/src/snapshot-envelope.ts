import type { SnapshotConfig } from './snapshot-config.js';

/**
 * Envelope keys of cocoon's `snapshot.json` (snake_case) and the snapshot config fields
 * (camelCase) they map to, as upstream and the server's `/dl/` read them.
 */
export const ENVELOPE_FIELDS: readonly [string, string][] = [
  ['id', 'snapshotId'],
  ['description', 'description'],
  ['cpu', 'cpu'],
  ['memory', 'memory'],
  ['storage', 'storage'],
  ['queue_size', 'queueSize'],
  ['disk_queue_size', 'diskQueueSize'],
  ['image', 'image'],
  ['image_digest', 'imageDigest'],
  ['image_type', 'imageType'],
  ['network', 'network'],
  ['no_direct_io', 'noDirectIo'],
  ['windows', 'windows'],
  ['image_blob_ids', 'imageBlobIds'],
  ['hypervisor', 'hypervisor'],
  ['nics', 'nics'],
];

/**
 * Config field holding the exported `snapshot.json` byte for byte (as a string), so that
 * fields this code does not know survive a push/pull round trip (upstream drops them).
 */
export const ENVELOPE_CONFIG_FIELD = 'envelope';

/**
 * The `snapshot.json` to import: the verbatim one when the config kept it (with `name` and
 * `description` replaced only if asked), else one rebuilt from the config fields as upstream
 * does.
 */
export function importEnvelope(
  config: SnapshotConfig,
  overrides: { name?: string; description?: string },
): Buffer {
  const verbatim = config[ENVELOPE_CONFIG_FIELD];
  if (typeof verbatim === 'string') {
    if (overrides.name === undefined && overrides.description === undefined) {
      return Buffer.from(verbatim);
    }
    const doc = JSON.parse(verbatim) as { config?: Record<string, unknown> };
    doc.config ??= {};
    if (overrides.name !== undefined) doc.config.name = overrides.name;
    if (overrides.description !== undefined) doc.config.description = overrides.description;
    return Buffer.from(`${JSON.stringify(doc)}\n`);
  }
  const envelope: Record<string, unknown> = {};
  if (overrides.name !== undefined) envelope.name = overrides.name;
  for (const [key, field] of ENVELOPE_FIELDS) {
    if (config[field] !== undefined) envelope[key] = config[field];
  }
  if (overrides.description !== undefined) envelope.description = overrides.description;
  return Buffer.from(`${JSON.stringify({ config: envelope, version: 1 })}\n`);
}
