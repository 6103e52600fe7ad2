import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  digestOf,
  OciValidationError,
  parseSnapshotConfig,
  type SnapshotConfig,
  sparseSegments,
} from '../src/index.js';
import { bytesOf } from './fixtures.js';

/** Arbitrary JSON as it reads back from JSON text (fast-check may produce -0, JSON cannot). */
function jsonValue(maxDepth: number) {
  return fc.jsonValue({ maxDepth }).map((value) => JSON.parse(JSON.stringify(value)) as unknown);
}

// The shape upstream epoch's snapshot pusher writes (snapshot/push.go), sparseMap as the raw
// COCOON.sparse.map PAX string.
const upstreamV1: SnapshotConfig = {
  schemaVersion: 'v1',
  snapshotId: 'sn-0123456789',
  description: 'dev box',
  image: 'ghcr.io/cocoonstack/cocoon/ubuntu:24.04',
  imageDigest: digestOf('image'),
  imageType: 'oci',
  imageBlobIds: { abc123: {}, def456: {} },
  hypervisor: 'cloud-hypervisor',
  cpu: 4,
  memory: 8 * 1024 ** 3,
  storage: 40 * 1024 ** 3,
  nics: 1,
  network: 'default',
  windows: false,
  files: {
    'config.json': { mode: 0o640 },
    'memory-ranges': {
      mode: 0o600,
      sparseMap: '[{"o":0,"l":4096},{"o":1048576,"l":8192}]',
      sparseSize: 8 * 1024 ** 3,
    },
  },
  createdAt: '2026-04-24T10:00:00Z',
};

const v2: SnapshotConfig = {
  schemaVersion: 'v2',
  snapshotId: 'sn-2',
  files: {
    'memory-ranges': {
      mode: 0o600,
      size: 3 * 1024 ** 2,
      chunks: [digestOf('c0'), digestOf('c1'), digestOf('c2', 'sha512')],
    },
  },
  // A field cocoon has and upstream dropped: it must survive.
  queue_size: 256,
};

function failure(doc: unknown): OciValidationError {
  try {
    parseSnapshotConfig(typeof doc === 'string' ? doc : bytesOf(doc));
  } catch (error) {
    expect(error).toBeInstanceOf(OciValidationError);
    return error as OciValidationError;
  }
  throw new Error('expected parseSnapshotConfig to throw');
}

describe('parseSnapshotConfig', () => {
  it('parses an upstream v1 config unchanged', () => {
    expect(parseSnapshotConfig(bytesOf(upstreamV1))).toEqual(upstreamV1);
  });

  it('parses a v2 config with chunks and keeps unknown fields', () => {
    const parsed = parseSnapshotConfig(JSON.stringify(v2));
    expect(parsed).toEqual(v2);
    expect(parsed.queue_size).toBe(256);
  });

  it('accepts an empty object, every field being optional', () => {
    expect(parseSnapshotConfig('{}')).toEqual({});
  });

  it('accepts an already decoded sparse map', () => {
    const doc = { files: { mem: { sparseMap: [{ o: 0, l: 1 }] } } };
    expect(parseSnapshotConfig(bytesOf(doc))).toEqual(doc);
  });

  it.each([
    ['', 'empty'],
    ['[]', 'array'],
    ['null', 'null'],
    ['{"cpu":', 'truncated'],
  ])('rejects %j (%s)', (text) => {
    expect(failure(text).code).toBe('MANIFEST_INVALID');
  });

  it.each<[string, unknown, string]>([
    ['string cpu', { cpu: '4' }, 'cpu'],
    ['negative memory', { memory: -1 }, 'memory'],
    ['fractional storage', { storage: 1.5 }, 'storage'],
    ['numeric snapshotId', { snapshotId: 7 }, 'snapshotId'],
    ['string windows', { windows: 'yes' }, 'windows'],
    ['schemaVersion number', { schemaVersion: 1 }, 'schemaVersion'],
    ['imageBlobIds list', { imageBlobIds: ['a'] }, 'imageBlobIds'],
    ['files list', { files: [] }, 'files'],
    ['file not an object', { files: { mem: 1 } }, 'files.mem'],
    ['file mode', { files: { 'config.json': { mode: '0640' } } }, 'files["config.json"].mode'],
    ['sparse size', { files: { mem: { sparseSize: -5 } } }, 'files.mem.sparseSize'],
    ['sparse map garbage', { files: { mem: { sparseMap: 'nope' } } }, 'files.mem.sparseMap'],
    [
      'sparse map object',
      { files: { mem: { sparseMap: '{"o":0,"l":1}' } } },
      'files.mem.sparseMap',
    ],
    [
      'sparse map negative',
      { files: { mem: { sparseMap: [{ o: -1, l: 1 }] } } },
      'files.mem.sparseMap',
    ],
    ['sparse map missing l', { files: { mem: { sparseMap: '[{"o":0}]' } } }, 'files.mem.sparseMap'],
    ['chunk digest', { files: { mem: { chunks: ['sha256:abc'] } } }, 'files.mem.chunks[0]'],
    ['chunks string', { files: { mem: { chunks: digestOf('x') } } }, 'files.mem.chunks'],
    ['file size', { files: { mem: { size: 'big' } } }, 'files.mem.size'],
    ['createdAt number', { createdAt: 0 }, 'createdAt'],
  ])('rejects %s, naming %s', (_label, doc, field) => {
    const error = failure(doc);
    expect(error).toMatchObject({ code: 'MANIFEST_INVALID', field });
    expect(error.message.startsWith(`${field}: `)).toBe(true);
  });

  it('round-trips generated configs with unknown fields', () => {
    const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });
    const segment = fc.record({ o: count, l: count });
    const file = fc.record(
      {
        mode: fc.nat({ max: 0o7777 }),
        sparseMap: fc.oneof(
          fc.array(segment, { maxLength: 4 }),
          fc.array(segment, { maxLength: 4 }).map((s) => JSON.stringify(s)),
        ),
        sparseSize: count,
        size: count,
        chunks: fc.array(
          fc.string().map((s) => digestOf(s)),
          { maxLength: 3 },
        ),
        'x-extra': jsonValue(1),
      },
      { requiredKeys: [] },
    );
    const name = fc.string({ minLength: 1, maxLength: 16 }).filter((s) => s !== '__proto__');
    const config = fc.record(
      {
        schemaVersion: fc.constantFrom('v1', 'v2'),
        snapshotId: fc.string(),
        cpu: fc.nat({ max: 256 }),
        memory: count,
        windows: fc.boolean(),
        imageBlobIds: fc.dictionary(name, fc.constant({})),
        files: fc.dictionary(name, file, { maxKeys: 4 }),
        createdAt: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        'x-future': jsonValue(2),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(config, (doc) => {
        const parsed = parseSnapshotConfig(bytesOf(doc));
        expect(parsed).toEqual(doc);
        expect(parseSnapshotConfig(JSON.stringify(parsed))).toEqual(parsed);
      }),
    );
  });
});

describe('sparseSegments', () => {
  it('decodes the upstream string form and the array form alike', () => {
    const files = upstreamV1.files ?? {};
    expect(sparseSegments(files['memory-ranges'] ?? {})).toEqual([
      { o: 0, l: 4096 },
      { o: 1048576, l: 8192 },
    ]);
    expect(sparseSegments({ sparseMap: [{ o: 5, l: 6 }] })).toEqual([{ o: 5, l: 6 }]);
    expect(sparseSegments({ sparseMap: '[]' })).toEqual([]);
  });

  it('returns undefined for a file that is not sparse', () => {
    expect(sparseSegments({ mode: 0o644 })).toBeUndefined();
  });

  it('throws MANIFEST_INVALID on a malformed map', () => {
    expect(() => sparseSegments({ sparseMap: '[{"o":"0","l":1}]' })).toThrow(OciValidationError);
  });
});
