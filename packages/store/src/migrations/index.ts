import type { Kysely, Migration, MigrationProvider } from 'kysely';
import type { DialectName } from '../dialect.js';
import * as initial from './0001-initial.js';
import * as gc from './0002-gc.js';
import * as settings from './0003-settings.js';
import * as aggregates from './0004-repository-aggregates.js';
import * as repositorySettings from './0005-repository-settings.js';

/**
 * The migrations in order, as modules (no directory scanning, so bundling and `dist/` layouts
 * cannot lose or reorder one). Names sort in the order they must run; never rename or edit a
 * released migration, add a new one instead.
 */
export class StoreMigrations implements MigrationProvider {
  readonly #dialect: DialectName;

  constructor(dialect: DialectName) {
    this.#dialect = dialect;
  }

  async getMigrations(): Promise<Record<string, Migration>> {
    const dialect = this.#dialect;
    return {
      '0001-initial': {
        up: (db: Kysely<unknown>) => initial.up(db, dialect),
        down: (db: Kysely<unknown>) => initial.down(db),
      },
      '0002-gc': {
        up: (db: Kysely<unknown>) => gc.up(db, dialect),
        down: (db: Kysely<unknown>) => gc.down(db),
      },
      '0003-settings': {
        up: (db: Kysely<unknown>) => settings.up(db, dialect),
        down: (db: Kysely<unknown>) => settings.down(db),
      },
      '0004-repository-aggregates': {
        up: (db: Kysely<unknown>) => aggregates.up(db, dialect),
        down: (db: Kysely<unknown>) => aggregates.down(db, dialect),
      },
      '0005-repository-settings': {
        up: (db: Kysely<unknown>) => repositorySettings.up(db, dialect),
        down: (db: Kysely<unknown>) => repositorySettings.down(db),
      },
    };
  }
}
