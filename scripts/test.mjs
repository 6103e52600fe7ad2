// Runs every workspace's tests through turbo, then prints one summary line over all of them.
// CI reads that line ("N passed, N failed, N skipped"), so it must be the last thing printed.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const workspaces = ['packages', 'apps'].flatMap((group) =>
  readdirSync(join(root, group), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(root, group, d.name)),
);

const resultFile = (dir) => join(dir, '.test-results', 'results.json');
for (const dir of workspaces) rmSync(resultFile(dir), { force: true });

const args = ['run', 'test', '--continue', ...process.argv.slice(2)];
const turbo = spawnSync('turbo', args, { stdio: 'inherit', env: process.env });

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const dir of workspaces) {
  if (!existsSync(join(dir, 'package.json'))) continue;
  const file = resultFile(dir);
  if (!existsSync(file)) {
    missing.push(dir.slice(root.length));
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
  // A suite that fails to load counts as a failure even when it declares no tests.
  failed += r.testResults.filter(
    (s) => s.status === 'failed' && s.assertionResults.length === 0,
  ).length;
}
if (missing.length > 0) {
  console.log(`no test results from: ${missing.join(', ')}`);
  failed += missing.length;
}
const code = turbo.status !== 0 || failed > 0 ? 1 : 0;
console.log(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(code);
