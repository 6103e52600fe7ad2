// Child process for the driver suite's crash tests: opens the store the parent describes in its
// environment (CRASH_FS_ROOT for the filesystem, else the EPOCH_S3_* variables), starts writing an
// endless body, and reports progress on stdout until the parent SIGKILLs it mid-write.
//
//   node crash-child.mjs put <key>          put(key, endless body)
//   node crash-child.mjs staged <key>       beginStaged(key), append 3 MiB of 0x07 (reported as
//                                           "STATE <json>"), then append an endless body
//
// It imports the built package (dist/), like a real server process would.
import { Readable } from 'node:stream';
import {
  createFsObjectStore,
  createS3ObjectStore,
  resolveS3Config,
} from '../../dist/storage/index.js';

const [mode, key] = process.argv.slice(2);
const MiB = 1024 * 1024;

async function openStore() {
  if (process.env.CRASH_FS_ROOT) return createFsObjectStore(process.env.CRASH_FS_ROOT);
  // The parent sets every EPOCH_S3_* variable it uses; the library itself reads no environment.
  const env = process.env;
  if (!env.EPOCH_S3_ENDPOINT) throw new Error('no store configured');
  const config = resolveS3Config({
    endpoint: env.EPOCH_S3_ENDPOINT,
    accessKey: env.EPOCH_S3_ACCESS_KEY,
    secretKey: env.EPOCH_S3_SECRET_KEY,
    bucket: env.EPOCH_S3_BUCKET,
    region: env.EPOCH_S3_REGION,
    prefix: env.EPOCH_S3_PREFIX,
  });
  return createS3ObjectStore(config);
}

function endless() {
  let produced = 0;
  return new Readable({
    read() {
      const chunk = Buffer.alloc(MiB, produced / MiB);
      produced += chunk.length;
      this.push(chunk);
      if (produced % (8 * MiB) === 0) process.stdout.write(`BYTES ${produced}\n`);
    },
  });
}

const store = await openStore();
if (mode === 'put') {
  await store.put(key, endless());
} else if (mode === 'staged') {
  let staged = await store.beginStaged(key);
  staged = await store.appendStaged(staged, Buffer.alloc(3 * MiB, 7));
  process.stdout.write(`STATE ${JSON.stringify(staged)}\n`);
  await store.appendStaged(staged, endless());
} else {
  throw new Error(`unknown mode ${mode}`);
}
// Only reached if the parent failed to kill us.
process.stdout.write('DONE\n');
