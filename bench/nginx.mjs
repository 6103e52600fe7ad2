// Upload throughput through deploy/nginx/epoch.conf against straight to Epoch, same machine, same
// run (the operations issue's target: through nginx ≥ 80% of direct). Prints a table; asserts
// nothing.
//
//   node bench/nginx.mjs [--size-mib 1024] [--runs 2]
//
// Needs `pnpm build`, curl and nginx (apt-get install nginx).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { hasNginx, startNginx } from '../packages/test-support/src/nginx.mjs';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    runs: { type: 'string', default: '2' },
  },
});
const MiB = 1024 * 1024;
const SIZE = Number(values['size-mib']) * MiB;
const RUNS = Number(values.runs);
const root = new URL('..', import.meta.url).pathname;
await mkdir(join(root, 'bench', '.results'), { recursive: true });
const work = await mkdtemp(join(root, 'bench', '.results', 'nginx-'));

if (!hasNginx) {
  console.log('nginx is not installed (apt-get install nginx); nothing to measure');
  process.exit(0);
}

/** A file of `size` pseudo-random bytes (incompressible, so nothing is faster than it should be). */
async function makeFile(path, size, seed) {
  const out = createWriteStream(path);
  const hash = createHash('sha256');
  let block = createHash('sha512').update(seed).digest();
  for (let written = 0; written < size; written += MiB) {
    const chunk = Buffer.alloc(MiB);
    for (let i = 0; i < MiB; i += 64) {
      block = createHash('sha512').update(block).digest();
      block.copy(chunk, i);
    }
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return `sha256:${hash.digest('hex')}`;
}

async function startEpoch() {
  const dataDir = join(work, 'epoch-data');
  await writeFile(join(work, 's3.env'), '');
  const child = spawn(process.execPath, [join(root, 'apps/cli/dist/main.js'), 'serve'], {
    env: {
      ...process.env,
      EPOCH_ADDR: '127.0.0.1:0',
      EPOCH_DATA_DIR: dataDir,
      EPOCH_LOG_LEVEL: 'info',
      EPOCH_S3_ENV_FILE: join(work, 's3.env'),
      EPOCH_ANONYMOUS_PUSH: 'true',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve) => {
    lines.on('line', (line) => {
      const entry = JSON.parse(line);
      if (entry.msg === 'listening') resolve(entry.url);
    });
  });
  return { child, url };
}

/** One monolithic upload with curl (POST ?digest=, the file as body); MB/s. */
async function upload(base, repo, file, digest) {
  const started = performance.now();
  const curl = spawn('curl', [
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-X',
    'POST',
    '-H',
    'Content-Type: application/octet-stream',
    // -T streams the file (--data-binary @file would read it all into memory first).
    '-T',
    file,
    // No trailing slash: with -T, curl appends the file name to a URL ending in one.
    `${base}/v2/${repo}/blobs/uploads?digest=${digest}`,
  ]);
  let out = '';
  curl.stdout.on('data', (c) => {
    out += c;
  });
  curl.stderr.pipe(process.stderr);
  await once(curl, 'exit');
  if (out !== '201') throw new Error(`upload answered ${out}`);
  return SIZE / 1e6 / ((performance.now() - started) / 1000);
}

const epoch = await startEpoch();
const nginx = await startNginx([new URL(epoch.url).host], { dir: work });
try {
  const rows = [];
  for (let run = 1; run <= RUNS; run++) {
    // A new blob each time: an existing blob would be deduplicated, not written.
    const direct = join(work, `direct-${run}`);
    const directDigest = await makeFile(direct, SIZE, `direct-${run}`);
    const proxied = join(work, `proxied-${run}`);
    const proxiedDigest = await makeFile(proxied, SIZE, `proxied-${run}`);
    const d = await upload(epoch.url, `bench/direct${run}`, direct, directDigest);
    const p = await upload(nginx.url, `bench/nginx${run}`, proxied, proxiedDigest);
    rows.push({ run, direct: d, nginx: p });
    await rm(direct);
    await rm(proxied);
  }
  console.log(`\n${SIZE / MiB} MiB monolithic upload with curl (MB/s)\n`);
  console.log('| run | direct to Epoch | through nginx | nginx / direct |');
  console.log('| --- | --------------- | ------------- | -------------- |');
  for (const r of rows) {
    console.log(
      `| ${r.run} | ${r.direct.toFixed(0)} | ${r.nginx.toFixed(0)} | ${((100 * r.nginx) / r.direct).toFixed(0)}% |`,
    );
  }
} finally {
  epoch.child.kill('SIGTERM');
  await Promise.all([nginx.stop(), once(epoch.child, 'exit')]);
  await rm(work, { recursive: true, force: true });
}
