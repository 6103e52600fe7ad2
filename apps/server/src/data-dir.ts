import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from './config.js';

/**
 * Creates the data directory and its missing parents, one level at a time.
 *
 * Node's `mkdir(…, { recursive: true })` (libuv) loops forever when a parent exists but refuses
 * new entries with ENOENT, as procfs and sysfs do: `--data-dir /proc/epoch` made the server hang
 * without a word. Here each level is tried at most twice, so every failure surfaces, and it does
 * as a ConfigError naming the setting.
 */
export async function prepareDataDir(dir: string): Promise<void> {
  try {
    await makeDirectory(dir);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(
      `EPOCH_DATA_DIR/--data-dir ${JSON.stringify(dir)} cannot be used as the data directory: ${reason}`,
    );
  }
}

async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (!(await stat(dir)).isDirectory()) {
        throw new ConfigError(
          `EPOCH_DATA_DIR/--data-dir ${JSON.stringify(dir)} exists and is not a directory`,
        );
      }
      return;
    }
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    await makeDirectory(parent);
  }
  // The parent exists now: a second ENOENT means this filesystem takes no new directories.
  try {
    await mkdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}
