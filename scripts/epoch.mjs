// `pnpm epoch …` from the repository root: make sure the CLI is built (turbo makes this a cache
// hit after the first time), then run it with the caller's arguments and working directory.
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const build = spawnSync(
  'turbo',
  ['run', 'build', '--filter=@epoch/cli...', '--output-logs=errors-only'],
  {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
if (build.status !== 0) {
  process.stderr.write('epoch: building the CLI failed (run `pnpm build` to see why)\n');
  process.exit(build.status ?? 1);
}
const cli = spawnSync(
  process.execPath,
  [`${root}apps/cli/dist/main.js`, ...process.argv.slice(2)],
  {
    stdio: 'inherit',
  },
);
process.exit(cli.status ?? 1);
