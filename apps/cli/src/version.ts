import { readFileSync } from 'node:fs';

// Read from package.json at run time so `epoch version` can never drift from the released package.
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** The CLI's version, from its package.json. */
export const VERSION: string = pkg.version;
