// `pnpm epoch …` and `pnpm start` from a checkout: build what the CLI needs (a turbo cache hit
// after the first time, with progress on stderr when it is not), then run the CLI with the
// caller's arguments in the caller's directory. pnpm runs root scripts in the repository root and
// sets INIT_CWD to where it was called from: relative paths (`--from-tar x.tar`, `--data-dir d`)
// must resolve against that directory. `node scripts/epoch.mjs` works without pnpm too.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { build, root } from './lib/build.mjs';

await build('@epoch/cli...');

const cli = spawn(
  process.execPath,
  [join(root, 'apps/cli/dist/main.js'), ...process.argv.slice(2)],
  { cwd: process.env.INIT_CWD || process.cwd(), stdio: 'inherit' },
);
// Ctrl-C reaches the whole process group, the CLI included, and the CLI decides how to stop
// (`epoch serve` shuts down and exits 0); a SIGTERM or SIGHUP sent to this wrapper alone (a
// supervisor, `kill`) is passed on. Either way the wrapper exits as the CLI did, so `pnpm start`
// ends without pnpm's "Command failed" when the server stopped cleanly.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (signal !== 'SIGINT') cli.kill(signal);
  });
}
cli.on('close', (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
