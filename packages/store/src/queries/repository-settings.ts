import { DEFAULT_SNAPSHOT_FORMAT, isSnapshotFormat, type SnapshotFormat } from '@epoch/oci';
import { type Executor, upsert } from '../dialect.js';
import type { SqlTime } from '../schema.js';
import { fromSqlTime } from '../sql-time.js';

/**
 * What a person chose for one repository (`GET/PUT /api/repositories/<name>/settings`). A
 * repository nobody configured has the defaults and no `updatedAt`/`updatedBy`.
 */
export interface RepositorySettings {
  /** The format of a push that names none (`epoch push` without `--[no-]incremental`). */
  defaultFormat: SnapshotFormat;
  /** When the settings were last set. */
  updatedAt?: Date;
  /** Who last set them (a principal's name, as the audit log has it). */
  updatedBy?: string;
}

/** A change of a repository's settings. */
export interface RepositorySettingsChange {
  defaultFormat: SnapshotFormat;
}

/**
 * A stored format name as a format. Only {@link setRepositorySettings} writes the column, from
 * `SNAPSHOT_FORMATS`; a name a later release may add reads here as the default, `full`, which
 * every reader understands, rather than as something this code cannot push.
 */
export function storedFormat(value: string | null | undefined): SnapshotFormat {
  return isSnapshotFormat(value) ? value : DEFAULT_SNAPSHOT_FORMAT;
}

/** The settings of repository `name` (the defaults when nobody set any). */
export async function getRepositorySettings(
  x: Executor,
  name: string,
): Promise<RepositorySettings> {
  const row = await x.db
    .selectFrom('repository_settings')
    .select(['default_format', 'updated_at', 'updated_by'])
    .where('name', '=', name)
    .executeTakeFirst();
  if (row === undefined) return { defaultFormat: DEFAULT_SNAPSHOT_FORMAT };
  return {
    defaultFormat: storedFormat(row.default_format),
    updatedAt: fromSqlTime(row.updated_at),
    updatedBy: row.updated_by,
  };
}

/**
 * Sets the settings of repository `name` (whether or not it holds anything yet: settings are
 * kept by name) and returns them as they were (for the audit log) and as they are now.
 */
export async function setRepositorySettings(
  x: Executor,
  name: string,
  change: RepositorySettingsChange,
  actor: string,
  at: SqlTime,
): Promise<{ before: RepositorySettings; after: RepositorySettings }> {
  if (!isSnapshotFormat(change.defaultFormat)) {
    // Callers validate requests; this guards the column against a caller that did not.
    throw new TypeError(`unknown snapshot format ${String(change.defaultFormat)}`);
  }
  const before = await getRepositorySettings(x, name);
  const values = { default_format: change.defaultFormat, updated_at: at, updated_by: actor };
  const insert = x.db.insertInto('repository_settings').values({ name, ...values });
  await upsert(x, insert, ['name'], values).execute();
  return { before, after: await getRepositorySettings(x, name) };
}
