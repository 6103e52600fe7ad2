#!/usr/bin/env node
// The `epoch` command. A file that exists before the build, so package managers can link it on
// a fresh clone; it loads the compiled CLI, or says how to build it.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'epoch: the CLI is not built: run `npx -y pnpm@10 build` in the checkout (or use `pnpm epoch`, which builds first)\n',
  );
  process.exit(1);
}
await import(main.href);
