// The Ceph RGW of scripts/rgw.sh for the benchmarks: its address and keys, and buckets made and
// deleted with the S3 SDK from @epoch/registry's dependencies.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

/**
 * The RGW of scripts/rgw.sh, from the EPOCH_TEST_RGW_* variables or by starting it, plus the
 * SDK (from @epoch/registry's dependencies) to create and delete the benchmark's buckets.
 */
export async function rgwSetup() {
  let env = process.env;
  if (!env.EPOCH_TEST_RGW_URL) {
    const r = spawnSync('bash', [join(root, 'scripts/rgw.sh'), 'start'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0) throw new Error('scripts/rgw.sh start failed');
    env = {};
    for (const m of r.stdout.matchAll(/^export (\w+)=(.*)$/gm)) env[m[1]] = m[2];
  }
  const rgw = {
    endpoint: env.EPOCH_TEST_RGW_URL,
    accessKey: env.EPOCH_TEST_RGW_ACCESS_KEY,
    secretKey: env.EPOCH_TEST_RGW_SECRET_KEY,
    region: env.EPOCH_TEST_RGW_REGION || 'us-east-1',
  };
  const sdk = createRequire(join(root, 'packages/registry/package.json'))('@aws-sdk/client-s3');
  const client = new sdk.S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    credentials: { accessKeyId: rgw.accessKey, secretAccessKey: rgw.secretKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const buckets = [];
  const rgwDir = process.env.EPOCH_RGW_DIR || join(process.env.TMPDIR || '/tmp', 'epoch-rgw');
  const pids = ['rgw', 'osd'].map((d) =>
    Number(spawnSync('cat', [join(rgwDir, 'pids', `${d}.pid`)], { encoding: 'utf8' }).stdout),
  );
  return {
    ...rgw,
    pids: pids.filter((p) => p > 0),
    async bucket(name) {
      await client.send(new sdk.CreateBucketCommand({ Bucket: name }));
      buckets.push(name);
      return name;
    },
    /** Empties and deletes the benchmark's buckets. */
    async cleanup() {
      for (const Bucket of buckets) {
        for (;;) {
          const out = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket }));
          for (const u of out.Uploads ?? []) {
            await client.send(
              new sdk.AbortMultipartUploadCommand({ Bucket, Key: u.Key, UploadId: u.UploadId }),
            );
          }
          if (!out.IsTruncated || (out.Uploads ?? []).length === 0) break;
        }
        let token;
        do {
          const page = await client.send(
            new sdk.ListObjectsV2Command({ Bucket, ContinuationToken: token }),
          );
          const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
          if (keys.length > 0) {
            await client.send(
              new sdk.DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }),
            );
          }
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        await client.send(new sdk.DeleteBucketCommand({ Bucket }));
      }
      client.destroy();
    },
  };
}
