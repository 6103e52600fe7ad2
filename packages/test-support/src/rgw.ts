import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { listUploads, type S3TestServer } from './s3-server.js';

/**
 * The Ceph RGW the tests may use, from the variables `scripts/rgw.sh start` prints
 * (`EPOCH_TEST_RGW_URL`, `_ACCESS_KEY`, `_SECRET_KEY`, `_REGION`); CI always sets them (see
 * `.ci/run`). Undefined when RGW is not configured: the RGW variants of the S3 tests are then not
 * defined at all (there is nothing to start from inside a test).
 */
export const RGW = rgwFromEnv(process.env);

function rgwFromEnv(
  env: NodeJS.ProcessEnv,
): { endpoint: string; accessKey: string; secretKey: string; region: string } | undefined {
  const endpoint = env.EPOCH_TEST_RGW_URL?.trim();
  if (!endpoint) return undefined;
  const accessKey = env.EPOCH_TEST_RGW_ACCESS_KEY?.trim();
  const secretKey = env.EPOCH_TEST_RGW_SECRET_KEY?.trim();
  if (!accessKey || !secretKey) {
    throw new Error(
      'EPOCH_TEST_RGW_URL is set but EPOCH_TEST_RGW_ACCESS_KEY or EPOCH_TEST_RGW_SECRET_KEY is not (eval "$(scripts/rgw.sh start)")',
    );
  }
  return {
    endpoint,
    accessKey,
    secretKey,
    region: env.EPOCH_TEST_RGW_REGION?.trim() || 'us-east-1',
  };
}

function client(rgw: NonNullable<typeof RGW>): S3Client {
  return new S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    credentials: { accessKeyId: rgw.accessKey, secretAccessKey: rgw.secretKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * A fresh bucket on the configured RGW, shaped like the in-process servers of `s3-server.ts`.
 * `close()` empties the bucket (objects and multipart uploads) and deletes it.
 */
export async function startRgwBucket(): Promise<S3TestServer> {
  const rgw = RGW;
  if (!rgw) throw new Error('RGW is not configured (EPOCH_TEST_RGW_URL)');
  const bucket = `epoch-test-${randomBytes(5).toString('hex')}`;
  const s3 = client(rgw);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    s3.destroy();
    throw err;
  }
  const server: S3TestServer = {
    kind: 'rgw',
    endpoint: rgw.endpoint,
    accessKey: rgw.accessKey,
    secretKey: rgw.secretKey,
    region: rgw.region,
    bucket,
    uploads: (prefix) => listUploads(server, prefix),
    close: async () => {
      try {
        await emptyBucket(s3, bucket);
        await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
      } finally {
        s3.destroy();
      }
    },
  };
  return server;
}

async function emptyBucket(s3: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const out = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    const uploads = out.Uploads ?? [];
    await Promise.all(
      uploads.map((u) =>
        s3.send(
          new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }),
        ),
      ),
    );
    if (out.IsTruncated !== true || uploads.length === 0) break;
  }
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
    );
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
    if (keys.length > 0) {
      await s3.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }),
      );
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}
