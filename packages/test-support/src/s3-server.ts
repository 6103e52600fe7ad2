import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { type FauxqsFeatures, startPatchedFauxqs } from './fauxqs-server.mjs';

/** A running S3-compatible test server with a fresh bucket. */
export interface S3TestServer {
  /**
   * `fauxqs`: in-memory, with the S3 features it lacks added by `fauxqs-server.mjs`;
   * `fauxqs-plain`: the npm package as published (no optional features); `rgw`: Ceph RGW
   * (`scripts/rgw.sh`, see `rgw.ts`).
   */
  kind: 'fauxqs' | 'fauxqs-plain' | 'rgw';
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region: string;
  /**
   * The open multipart uploads whose key (in the bucket, prefix included) starts with `prefix`,
   * as `upload:<key>`: read from the server itself, so that it also works where the server has no
   * `ListMultipartUploads`.
   */
  uploads(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

export interface StartS3ServerOptions {
  /**
   * Run the server in a child process instead of this one. The server holds every object in
   * memory, so tests that measure this process's memory (or its throughput) need it elsewhere.
   */
  childProcess?: boolean;
  /** Switch off S3 features the server adds to fauxqs, to test the drivers' fallbacks. */
  features?: FauxqsFeatures;
  /** fauxqs exactly as published: none of the added features (in this process only). */
  plain?: boolean;
}

const serverScript = fileURLToPath(new URL('./fauxqs-server.mjs', import.meta.url));

/**
 * Starts an in-memory S3-compatible server (fauxqs plus the S3 behaviour it lacks, see
 * `fauxqs-server.mjs`) on a random loopback port, with a fresh bucket. Any credentials work.
 */
export async function startS3Server(options: StartS3ServerOptions = {}): Promise<S3TestServer> {
  const bucket = `epoch-test-${randomBytes(4).toString('hex')}`;
  const base = { accessKey: 'test', secretKey: 'test', bucket, region: 'us-east-1' };
  if (!options.childProcess || options.plain) {
    const server = await startPatchedFauxqs({ features: options.features, plain: options.plain });
    server.createBucket(bucket);
    return {
      ...base,
      kind: options.plain ? 'fauxqs-plain' : 'fauxqs',
      endpoint: server.endpoint,
      uploads: async (prefix) => server.uploads(prefix),
      close: () => server.close(),
    };
  }
  const child = spawn(process.execPath, [serverScript], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: {
      ...process.env,
      FAUXQS_FEATURES: JSON.stringify(options.features ?? {}),
      FAUXQS_BUCKETS: bucket,
    },
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`S3 test server exited with ${code}`)));
    lines.once('line', (line) => {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed === 'object' && parsed !== null && 'endpoint' in parsed) {
        resolve(String(parsed.endpoint));
      } else reject(new Error(`unexpected output from the S3 test server: ${line}`));
    });
  });
  // The bucket is created by the child before it reads stdin; wait until it answers for it.
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${endpoint}/${bucket}`, { method: 'HEAD' });
    if (res.ok) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    ...base,
    kind: 'fauxqs',
    endpoint,
    uploads: (prefix) => listUploads({ ...base, endpoint }, prefix),
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * The S3 driver's settings (`S3Config` of `@epoch/registry`, which this package cannot depend on:
 * the registry's tests depend on this package) for a test server.
 */
export interface S3TestConfig<Tuning> {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region: string;
  prefix: string;
  tuning?: Tuning;
}

/** Driver settings for a test server, optionally under a key prefix of its bucket. */
export function s3ConfigFor<Tuning extends object = Record<never, never>>(
  server: S3TestServer,
  prefix = '',
  tuning?: Tuning,
): S3TestConfig<Tuning> {
  return {
    endpoint: server.endpoint,
    accessKey: server.accessKey,
    secretKey: server.secretKey,
    bucket: server.bucket,
    region: server.region,
    prefix,
    ...(tuning ? { tuning } : {}),
  };
}

/** The `EPOCH_S3_*` variables that select this server (for child processes and config tests). */
export function s3EnvFor(server: S3TestServer, prefix = ''): Record<string, string> {
  return {
    EPOCH_S3_ENDPOINT: server.endpoint,
    EPOCH_S3_ACCESS_KEY: server.accessKey,
    EPOCH_S3_SECRET_KEY: server.secretKey,
    EPOCH_S3_BUCKET: server.bucket,
    EPOCH_S3_REGION: server.region,
    EPOCH_S3_PREFIX: prefix,
  };
}

/** Open multipart uploads under `prefix`, listed with `ListMultipartUploads`. */
export async function listUploads(
  server: Pick<S3TestServer, 'endpoint' | 'accessKey' | 'secretKey' | 'bucket' | 'region'>,
  prefix: string,
): Promise<string[]> {
  const client = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    const found: string[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const out = await client.send(
        new ListMultipartUploadsCommand({
          Bucket: server.bucket,
          Prefix: prefix,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      );
      for (const u of out.Uploads ?? []) found.push(`upload:${u.Key}`);
      if (out.IsTruncated !== true || !out.NextKeyMarker) break;
      keyMarker = out.NextKeyMarker;
      uploadIdMarker = out.NextUploadIdMarker;
    }
    return found;
  } finally {
    client.destroy();
  }
}
