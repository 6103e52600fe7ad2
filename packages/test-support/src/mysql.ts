import { createConnection } from 'mysql2/promise';

/** The MariaDB/MySQL server tests may use; CI sets it (see .ci/run). */
export const MYSQL_URL = process.env.EPOCH_TEST_MYSQL_URL;

/** A fresh, empty database on the test server, and a way to drop it. */
export async function freshMysqlDatabase(): Promise<{ dsn: string; drop(): Promise<void> }> {
  if (!MYSQL_URL) throw new Error('EPOCH_TEST_MYSQL_URL is not set');
  const name = `epoch_test_${Math.random().toString(36).slice(2, 10)}`;
  const admin = await createConnection({ uri: MYSQL_URL });
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(MYSQL_URL);
  url.pathname = `/${name}`;
  return {
    dsn: url.toString(),
    async drop() {
      const c = await createConnection({ uri: MYSQL_URL ?? '' });
      await c.query(`DROP DATABASE IF EXISTS ${name}`);
      await c.end();
    },
  };
}

/**
 * The index databases a server test runs on: SQLite always, MySQL when a server is configured
 * (there is none to start from inside a test otherwise).
 */
export const indexKinds: ('sqlite' | 'mysql')[] = MYSQL_URL ? ['sqlite', 'mysql'] : ['sqlite'];
