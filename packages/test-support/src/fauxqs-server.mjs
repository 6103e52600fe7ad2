// An S3-compatible test server: fauxqs 1.9.2 (in-memory, Node 20) plus the S3 behaviour the
// object-store drivers rely on and fauxqs lacks, implemented after the AWS S3 API reference so the
// shared driver suite tests real S3 semantics rather than the emulator's gaps:
//
// - listings in byte order of key (fauxqs sorts with localeCompare, which puts `B` after `a` and,
//   with its `<=` start-after check, skips or repeats keys across pages of mixed-case keys);
// - `If-None-Match: *` on PutObject, CopyObject and CompleteMultipartUpload (fauxqs ignores it and
//   overwrites), answered 412 PreconditionFailed when the key exists;
// - UploadPartCopy, with `x-amz-copy-source-range` (fauxqs routes it to UploadPart, which fails
//   with a 500 on the missing body);
// - ListMultipartUploads (fauxqs answers it as a ListObjects) and ListParts (fauxqs answers it as a
//   GetObject).
//
// fauxqs also caps request bodies at 11 MiB, so parts and single PUTs must stay below that; the
// driver's first 1,000 parts are 10 MiB.
//
// `plain: true` starts fauxqs exactly as the npm package ships it, without any of the above: a
// ready "S3 server without the optional features". The `features` switch single ones off (or
// change them) to test the driver's other paths: `completeSubset: false` refuses a completion
// that leaves out an uploaded part, as Ceph RGW does; `conditionalWrites: 'put-only'` honours
// `If-None-Match: *` on PutObject only, as Ceph RGW does; `multipart: false` answers every
// multipart request 501.
//
// Plain JavaScript so that it also runs as a child process (`node fauxqs-server.mjs`, printing
// `{"endpoint": …}` on its first stdout line), which keeps the server's memory (it holds every
// object) out of the measurements of the process under test.

const fauxqsDist = new URL('../node_modules/fauxqs/dist/', import.meta.url);
const { buildApp } = await import(new URL('app.js', fauxqsDist).href);
const { S3Store } = await import(new URL('s3/s3Store.js', fauxqsDist).href);
const { SqsStore } = await import(new URL('sqs/sqsStore.js', fauxqsDist).href);
const { SnsStore } = await import(new URL('sns/snsStore.js', fauxqsDist).href);
const { putObject } = await import(new URL('s3/actions/putObject.js', fauxqsDist).href);
const { completeMultipartUpload } = await import(
  new URL('s3/actions/completeMultipartUpload.js', fauxqsDist).href
);

/**
 * Starts the server on 127.0.0.1.
 * @param {{ port?: number, plain?: boolean, features?: import('./fauxqs-server.d.mts').FauxqsFeatures }} [options]
 */
export async function startPatchedFauxqs(options = {}) {
  const features = {
    uploadPartCopy: true,
    conditionalWrites: true,
    completeSubset: true,
    multipart: true,
    ...options.features,
  };
  const s3Store = new S3Store();
  if (!options.plain) {
    s3Store.listObjects = (bucket, opts) => listObjectsByteOrder(s3Store, bucket, opts);
  }
  const app = buildApp({
    logger: false,
    stores: { sqsStore: new SqsStore(), snsStore: new SnsStore(), s3Store },
  });
  if (!options.plain) addExtensions(app, s3Store, features);
  const address = await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  return {
    endpoint: address,
    createBucket: (name) => s3Store.createBucket(name),
    /** Open multipart uploads as `upload:<key>` (what the harness counts as leftovers). */
    uploads: (prefix = '') =>
      [...s3Store.multipartUploads.values()]
        .filter((u) => u.key.startsWith(prefix))
        .map((u) => `upload:${u.key}`),
    close: () => app.close(),
  };
}

function addExtensions(app, s3Store, features) {
  app.addHook('preHandler', async (request, reply) => {
    try {
      return extend(request, reply, s3Store, features);
    } catch (err) {
      if (err && typeof err.statusCode === 'number' && typeof err.toXml === 'function') {
        reply.header('content-type', 'application/xml');
        return reply.status(err.statusCode).send(request.method === 'HEAD' ? '' : err.toXml());
      }
      throw err;
    }
  });
}

/** Handles the extended requests itself (returning the reply) or lets fauxqs handle them. */
function extend(request, reply, store, features) {
  const params = request.params ?? {};
  const bucket = params.bucket;
  if (typeof bucket !== 'string') return undefined;
  const key = params['*'] ?? '';
  const query = request.query ?? {};
  const headers = request.headers;
  const method = request.method;

  if (!features.multipart && key !== '' && ('uploads' in query || query.uploadId)) {
    return sendError(reply, 501, 'NotImplemented', 'Multipart uploads are not implemented');
  }
  if (method === 'POST' && key !== '' && query.uploadId && !features.completeSubset) {
    const upload = store.multipartUploads.get(query.uploadId);
    const listed = new Set(
      [...String(request.body ?? '').matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) =>
        Number(m[1]),
      ),
    );
    if (upload && [...upload.parts.keys()].some((n) => !listed.has(n))) {
      return sendError(reply, 400, 'InvalidPart', 'Every uploaded part must be listed');
    }
  }
  if (method === 'GET' && key === '' && 'uploads' in query) {
    return listMultipartUploads(reply, store, bucket, query);
  }
  if (method === 'GET' && key === '' && query['list-type'] === '2') {
    if (!store.hasBucket(bucket)) return sendError(reply, 404, 'NoSuchBucket', 'No such bucket');
    return listObjectsV2(reply, store, bucket, query);
  }
  if (method === 'GET' && key !== '' && query.uploadId) {
    return listParts(reply, store, bucket, key, query);
  }
  if (method === 'PUT' && key !== '' && query.uploadId && query.partNumber) {
    if (!headers['x-amz-copy-source']) return undefined;
    if (features.uploadPartCopy) return uploadPartCopy(reply, store, query, headers);
    // What a server without UploadPartCopy answers (fauxqs itself fails with a 500).
    return sendError(reply, 501, 'NotImplemented', 'UploadPartCopy is not implemented');
  }
  if (features.conditionalWrites === 'not-implemented' && headers['if-none-match'] === '*') {
    return sendError(
      reply,
      501,
      'NotImplemented',
      'A header you provided implies functionality that is not implemented',
    );
  }
  const conditional =
    (features.conditionalWrites === true ||
      (features.conditionalWrites === 'put-only' &&
        method === 'PUT' &&
        !query.uploadId &&
        !headers['x-amz-copy-source'])) &&
    headers['if-none-match'] === '*';
  if (!conditional || key === '') return undefined;
  const exists = store.buckets.get(bucket)?.has(key) === true;
  if (method === 'PUT' && !query.uploadId) {
    if (exists) return preconditionFailed(reply);
    // Check and write in one synchronous step, so concurrent conditional writes cannot both win.
    putObject(request, reply, store);
    return reply;
  }
  if (method === 'POST' && query.uploadId) {
    if (exists) return preconditionFailed(reply);
    completeMultipartUpload(request, reply, store);
    return reply;
  }
  return undefined;
}

function preconditionFailed(reply) {
  return sendError(
    reply,
    412,
    'PreconditionFailed',
    'At least one of the pre-conditions you specified did not hold',
  );
}

function sendError(reply, status, code, message) {
  reply.header('content-type', 'application/xml');
  return reply
    .status(status)
    .send(
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xml(message)}</Message></Error>`,
    );
}

function uploadPartCopy(reply, store, query, headers) {
  const raw = decodeURIComponent(String(headers['x-amz-copy-source']));
  const source = raw.startsWith('/') ? raw.slice(1) : raw;
  const slash = source.indexOf('/');
  if (slash < 1) return sendError(reply, 400, 'InvalidArgument', 'Invalid copy source');
  const object = store.getObject(source.slice(0, slash), source.slice(slash + 1));
  let body = object.body;
  const rangeHeader = headers['x-amz-copy-source-range'];
  if (rangeHeader) {
    const match = /^bytes=(\d+)-(\d+)$/.exec(String(rangeHeader));
    const start = match ? Number(match[1]) : Number.NaN;
    const end = match ? Number(match[2]) : Number.NaN;
    if (!(start <= end && end < body.length)) {
      return sendError(reply, 400, 'InvalidRange', 'The requested range is not satisfiable');
    }
    body = body.subarray(start, end + 1);
  }
  const etag = store.uploadPart(query.uploadId, Number.parseInt(query.partNumber, 10), body);
  reply.header('content-type', 'application/xml');
  return reply
    .status(200)
    .send(
      `<?xml version="1.0" encoding="UTF-8"?>\n<CopyPartResult><ETag>${xml(etag)}</ETag><LastModified>${new Date().toISOString()}</LastModified></CopyPartResult>`,
    );
}

function listMultipartUploads(reply, store, bucket, query) {
  if (!store.hasBucket(bucket)) return sendError(reply, 404, 'NoSuchBucket', 'No such bucket');
  const prefix = query.prefix ?? '';
  const keyMarker = query['key-marker'] ?? '';
  const uploadIdMarker = query['upload-id-marker'] ?? '';
  const max = Math.min(Number.parseInt(query['max-uploads'] ?? '1000', 10) || 1000, 1000);
  const uploads = [...store.multipartUploads.values()]
    .filter((u) => u.bucket === bucket && u.key.startsWith(prefix))
    .sort((a, b) => compareBytes(a.key, b.key) || compareBytes(a.uploadId, b.uploadId))
    .filter((u) => {
      if (!keyMarker) return true;
      const c = compareBytes(u.key, keyMarker);
      return (
        c > 0 || (c === 0 && uploadIdMarker !== '' && compareBytes(u.uploadId, uploadIdMarker) > 0)
      );
    });
  const page = uploads.slice(0, max);
  const truncated = uploads.length > max;
  const last = page.at(-1);
  const body = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    `<Bucket>${xml(bucket)}</Bucket>`,
    `<KeyMarker>${xml(keyMarker)}</KeyMarker>`,
    `<UploadIdMarker>${xml(uploadIdMarker)}</UploadIdMarker>`,
    truncated && last ? `<NextKeyMarker>${xml(last.key)}</NextKeyMarker>` : '',
    truncated && last ? `<NextUploadIdMarker>${xml(last.uploadId)}</NextUploadIdMarker>` : '',
    `<Prefix>${xml(prefix)}</Prefix>`,
    `<MaxUploads>${max}</MaxUploads>`,
    `<IsTruncated>${truncated}</IsTruncated>`,
    ...page.map(
      (u) =>
        `<Upload><Key>${xml(u.key)}</Key><UploadId>${xml(u.uploadId)}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
    ),
    '</ListMultipartUploadsResult>',
  ].join('');
  reply.header('content-type', 'application/xml');
  return reply.status(200).send(body);
}

function listParts(reply, store, bucket, key, query) {
  const upload = store.multipartUploads.get(query.uploadId);
  if (!upload || upload.bucket !== bucket || upload.key !== key) {
    return sendError(reply, 404, 'NoSuchUpload', 'The specified multipart upload does not exist.');
  }
  const marker = Number.parseInt(query['part-number-marker'] ?? '0', 10) || 0;
  const max = Math.min(Number.parseInt(query['max-parts'] ?? '1000', 10) || 1000, 1000);
  const parts = [...upload.parts.values()]
    .filter((p) => p.partNumber > marker)
    .sort((a, b) => a.partNumber - b.partNumber);
  const page = parts.slice(0, max);
  const truncated = parts.length > max;
  const body = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    `<Bucket>${xml(bucket)}</Bucket><Key>${xml(key)}</Key><UploadId>${xml(upload.uploadId)}</UploadId>`,
    `<PartNumberMarker>${marker}</PartNumberMarker>`,
    truncated ? `<NextPartNumberMarker>${page.at(-1)?.partNumber}</NextPartNumberMarker>` : '',
    `<MaxParts>${max}</MaxParts><IsTruncated>${truncated}</IsTruncated>`,
    ...page.map(
      (p) =>
        `<Part><PartNumber>${p.partNumber}</PartNumber><LastModified>${p.lastModified.toISOString()}</LastModified><ETag>${xml(p.etag)}</ETag><Size>${p.body.length}</Size></Part>`,
    ),
    '</ListPartsResult>',
  ].join('');
  reply.header('content-type', 'application/xml');
  return reply.status(200).send(body);
}

/** fauxqs's `S3Store.listObjects`, ordering keys by their UTF-8 bytes as S3 does. */
function listObjectsByteOrder(store, bucket, options = {}) {
  const objectsMap = store.buckets.get(bucket);
  if (!objectsMap) {
    const err = new Error('The specified bucket does not exist');
    err.statusCode = 404;
    err.toXml = () =>
      '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>';
    throw err;
  }
  const prefix = options.prefix ?? '';
  const delimiter = options.delimiter;
  const maxKeys = options.maxKeys ?? 1000;
  const startAfter = options.startAfter ?? options.marker ?? '';
  const all = [...objectsMap.values()]
    .filter((o) => o.key.startsWith(prefix))
    .sort((a, b) => compareBytes(a.key, b.key));
  const objects = [];
  const commonPrefixes = new Set();
  let count = 0;
  let isTruncated = false;
  for (const obj of all) {
    if (startAfter && compareBytes(obj.key, startAfter) <= 0) continue;
    if (delimiter) {
      const rest = obj.key.slice(prefix.length);
      const at = rest.indexOf(delimiter);
      if (at >= 0) {
        const common = prefix + rest.slice(0, at + delimiter.length);
        if (startAfter && compareBytes(common, startAfter) <= 0) continue;
        if (!commonPrefixes.has(common)) {
          if (count >= maxKeys) {
            isTruncated = true;
            break;
          }
          commonPrefixes.add(common);
          count++;
        }
        continue;
      }
    }
    if (count >= maxKeys) {
      isTruncated = true;
      break;
    }
    objects.push(obj);
    count++;
  }
  return { objects, commonPrefixes: [...commonPrefixes].sort(compareBytes), isTruncated };
}

/**
 * ListObjectsV2 over the byte-order listing. fauxqs's own derives the continuation token from the
 * last object even when a common prefix came after it, which repeats that prefix on the next page.
 */
function listObjectsV2(reply, store, bucket, query) {
  const prefix = query.prefix ?? '';
  const delimiter = query.delimiter || undefined;
  const maxKeys = Math.min(Number.parseInt(query['max-keys'] ?? '1000', 10), 1000);
  const token = query['continuation-token'];
  const startAfter = token
    ? Buffer.from(token, 'base64').toString('utf8')
    : (query['start-after'] ?? '');
  const { objects, commonPrefixes, isTruncated } = store.listObjects(bucket, {
    prefix,
    delimiter,
    maxKeys: Number.isNaN(maxKeys) ? 1000 : maxKeys,
    startAfter,
  });
  const lastObject = objects.at(-1)?.key;
  const lastPrefix = commonPrefixes.at(-1);
  const last =
    lastObject && lastPrefix
      ? compareBytes(lastObject, lastPrefix) > 0
        ? lastObject
        : lastPrefix
      : (lastObject ?? lastPrefix);
  const body = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    `<Name>${xml(bucket)}</Name><Prefix>${xml(prefix)}</Prefix>`,
    `<KeyCount>${objects.length + commonPrefixes.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys>`,
    delimiter ? `<Delimiter>${xml(delimiter)}</Delimiter>` : '',
    `<IsTruncated>${isTruncated}</IsTruncated>`,
    token ? `<ContinuationToken>${xml(token)}</ContinuationToken>` : '',
    isTruncated && last
      ? `<NextContinuationToken>${Buffer.from(last, 'utf8').toString('base64')}</NextContinuationToken>`
      : '',
    ...objects.map(
      (o) =>
        `<Contents><Key>${xml(o.key)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified><ETag>${xml(o.etag)}</ETag><Size>${o.contentLength}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
    ),
    ...commonPrefixes.map((p) => `<CommonPrefixes><Prefix>${xml(p)}</Prefix></CommonPrefixes>`),
    '</ListBucketResult>',
  ].join('');
  reply.header('content-type', 'application/xml');
  return reply.status(200).send(body);
}

function compareBytes(a, b) {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function xml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

// Child-process mode: start, report the endpoint, and exit when the parent goes away.
if (import.meta.url === `file://${process.argv[1]}`) {
  const features = JSON.parse(process.env.FAUXQS_FEATURES ?? '{}');
  const server = await startPatchedFauxqs({ features, plain: process.env.FAUXQS_PLAIN === '1' });
  process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  const buckets = (process.env.FAUXQS_BUCKETS ?? '').split(',').filter(Boolean);
  for (const b of buckets) server.createBucket(b);
}
