import { fileURLToPath } from 'node:url';

/**
 * The path of `fake-cocoon.mjs`, a stand-in for the cocoon binary (executable, `#!/usr/bin/env
 * node`): give it as the importer's or the CLI's cocoon binary, with `FAKE_COCOON_ROOT` set.
 */
export const fakeCocoon = fileURLToPath(new URL('./fake-cocoon.mjs', import.meta.url));
