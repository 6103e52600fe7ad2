// Runs every workspace's tests through turbo, then prints one summary line over all of them.
// CI reads that line ("N passed, N failed, N skipped"), so it must be the last thing printed.
// Before it, one line per reason tests were skipped: a test that skips says why in its title,
// as "[needs X]" or "[only on X]", and a skip without one is listed by name.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathWithPnpm } from './lib/build.mjs';

const root = new URL('..', import.meta.url).pathname;
// The workspace packages with tests: packages/*, apps/* and the end-to-end tests in e2e/. A
// package without a test script (packages/test-support) has no results to read.
const hasTests = (dir) => {
  const manifest = join(dir, 'package.json');
  return existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).scripts?.test;
};
const workspaces = [
  ...['packages', 'apps'].flatMap((group) =>
    readdirSync(join(root, group), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(root, group, d.name)),
  ),
  join(root, 'e2e'),
].filter(hasTests);

const resultFile = (dir) => join(dir, '.test-results', 'results.json');
for (const dir of workspaces) rmSync(resultFile(dir), { force: true });

const args = ['run', 'test', '--continue', ...process.argv.slice(2)];
const turbo = spawnSync(join(root, 'node_modules', '.bin', 'turbo'), args, {
  stdio: 'inherit',
  env: { ...process.env, PATH: pathWithPnpm() },
});

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
/** Skipped tests by reason: how many, and in which workspaces. */
const reasons = new Map();
const unexplained = [];
// How to enable what a reason names, where it takes more than reading the reason.
const HOW = {
  'needs EPOCH_TEST_MYSQL_URL':
    'set EPOCH_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/epoch_test after creating that database on a MariaDB or MySQL server (.ci/run does both)',
  'needs chromium': 'apt-get install chromium',
  'needs EPOCH_TEST_RGW_URL':
    'start the single-node Ceph RGW and export its variables: eval "$(bash scripts/rgw.sh start)" (.ci/run does; the suite on Node 24 leaves it out on purpose)',
  'needs nginx': 'apt-get install nginx',
  'needs systemd-analyze': 'apt-get install systemd',
};
for (const dir of workspaces) {
  const file = resultFile(dir);
  if (!existsSync(file)) {
    missing.push(dir.slice(root.length));
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
  for (const suite of r.testResults) {
    for (const test of suite.assertionResults) {
      if (!['skipped', 'pending', 'todo'].includes(test.status)) continue;
      const titles = [...test.ancestorTitles, test.title].join(' ');
      const reason = /\[((?:needs|only on) [^\]]+)\]/.exec(titles)?.[1];
      if (reason === undefined) {
        unexplained.push(`${suite.name.slice(root.length)} › ${titles}`);
        continue;
      }
      const entry = reasons.get(reason) ?? { count: 0, where: new Set() };
      entry.count++;
      entry.where.add(dir.slice(root.length));
      reasons.set(reason, entry);
    }
  }
  // A suite that fails to load counts as a failure even when it declares no tests.
  failed += r.testResults.filter(
    (s) => s.status === 'failed' && s.assertionResults.length === 0,
  ).length;
}
if (missing.length > 0) {
  console.log(`no test results from: ${missing.join(', ')}`);
  failed += missing.length;
}
for (const [reason, { count, where }] of reasons) {
  const how = HOW[reason] ? `: ${HOW[reason]}` : '';
  console.log(
    `skipped ${count} test${count === 1 ? '' : 's'} in ${[...where].join(', ')} [${reason}]${how}`,
  );
}
if (unexplained.length > 0) {
  console.log(`skipped without a stated reason: ${unexplained.join('; ')}`);
}
const code = turbo.status !== 0 || failed > 0 ? 1 : 0;
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(code);
