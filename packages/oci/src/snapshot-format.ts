/**
 * The two ways a VM snapshot can be stored, by the names people choose them with (`epoch push
 * --incremental` / `--no-incremental`, a repository's default through `/api/`, the dashboard):
 *
 * - `full`: upstream's format, one blob per exported file (`CocoonMediaTypes.snapshotArtifact`).
 *   Every reader of upstream epoch and cocoon understands it, so it is the default.
 * - `incremental`: chunk indexes and packs (`ChunkedMediaTypes.snapshotArtifact`,
 *   `docs/incremental-snapshots.md`): only chunks a repository lacks are sent and stored.
 *
 * This is the one list of those names: the index stores them, the server validates requests
 * against them, the CLI maps its flags onto them and the dashboard offers them.
 */
export const SNAPSHOT_FORMATS = ['full', 'incremental'] as const;

/** A snapshot format name: `full` or `incremental`. */
export type SnapshotFormat = (typeof SNAPSHOT_FORMATS)[number];

/** The format of a push that names none, to a repository without a default of its own. */
export const DEFAULT_SNAPSHOT_FORMAT: SnapshotFormat = 'full';

/** Whether `value` is one of {@link SNAPSHOT_FORMATS}. */
export function isSnapshotFormat(value: unknown): value is SnapshotFormat {
  return typeof value === 'string' && (SNAPSHOT_FORMATS as readonly string[]).includes(value);
}
