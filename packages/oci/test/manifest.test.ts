import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CocoonMediaTypes,
  type Descriptor,
  type Digest,
  MediaTypes,
  OciValidationError,
  parseManifest,
  referencedBlobs,
  referencedManifests,
} from '../src/index.js';
import { blob, bytesOf, HEX_A } from './fixtures.js';

/** Arbitrary JSON as it reads back from JSON text (fast-check may produce -0, JSON cannot). */
function jsonValue(maxDepth: number) {
  return fc.jsonValue({ maxDepth }).map((value) => JSON.parse(JSON.stringify(value)) as unknown);
}

const config = blob(MediaTypes.ociConfig, 'config');
const layer0 = blob(MediaTypes.ociLayerGzip, 'layer0');
const layer1 = blob(MediaTypes.ociLayerGzip, 'layer1');

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config,
  layers: [layer0, layer1],
};

const child = blob(MediaTypes.ociManifest, 'child', {
  platform: { architecture: 'amd64', os: 'linux' },
});
const ociIndex = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociIndex,
  manifests: [
    child,
    blob(MediaTypes.ociManifest, 'child2', {
      platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
    }),
  ],
};

function failure(doc: unknown, declared?: string): OciValidationError {
  const bytes = typeof doc === 'string' || doc instanceof Uint8Array ? doc : bytesOf(doc);
  try {
    parseManifest(bytes, declared);
  } catch (error) {
    expect(error).toBeInstanceOf(OciValidationError);
    return error as OciValidationError;
  }
  throw new Error('expected parseManifest to throw');
}

function withLayer(patch: Record<string, unknown>, index = 1) {
  const layers: Record<string, unknown>[] = [{ ...layer0 }, { ...layer1 }];
  layers[index] = { ...layers[index], ...patch };
  return { ...ociManifest, layers };
}

describe('parseManifest: accepted documents', () => {
  it('parses an OCI manifest declared with its own type', () => {
    const parsed = parseManifest(bytesOf(ociManifest), MediaTypes.ociManifest);
    expect(parsed).toEqual({
      kind: 'manifest',
      mediaType: MediaTypes.ociManifest,
      manifest: ociManifest,
    });
  });

  it('accepts a string as well as bytes', () => {
    expect(parseManifest(JSON.stringify(ociManifest)).manifest).toEqual(ociManifest);
  });

  it('takes the type from the document when nothing is declared', () => {
    expect(parseManifest(bytesOf(ociIndex)).kind).toBe('index');
    expect(parseManifest(bytesOf(ociIndex), '').mediaType).toBe(MediaTypes.ociIndex);
  });

  it('takes the type from the declaration when the document has none', () => {
    const { mediaType: _, ...bare } = ociManifest;
    const parsed = parseManifest(bytesOf(bare), MediaTypes.ociManifest);
    expect(parsed.kind).toBe('manifest');
    expect(parsed.mediaType).toBe(MediaTypes.ociManifest);
  });

  it('infers OCI types from the shape when neither says', () => {
    const { mediaType: _m, ...bareManifest } = ociManifest;
    const { mediaType: _i, ...bareIndex } = ociIndex;
    expect(parseManifest(bytesOf(bareManifest))).toMatchObject({
      kind: 'manifest',
      mediaType: MediaTypes.ociManifest,
    });
    expect(parseManifest(bytesOf(bareIndex))).toMatchObject({
      kind: 'index',
      mediaType: MediaTypes.ociIndex,
    });
  });

  it('ignores Content-Type parameters and letter case', () => {
    const parsed = parseManifest(
      bytesOf(ociManifest),
      'Application/VND.oci.image.manifest.v1+json; charset=utf-8',
    );
    expect(parsed.mediaType).toBe(MediaTypes.ociManifest);
  });

  it('parses Docker v2 manifests and manifest lists', () => {
    const docker = {
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifest,
      config: blob(MediaTypes.dockerConfig, 'c'),
      layers: [blob(MediaTypes.dockerLayerGzip, 'l')],
    };
    expect(parseManifest(bytesOf(docker), MediaTypes.dockerManifest).kind).toBe('manifest');
    const list = {
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifestList,
      manifests: [
        blob(MediaTypes.dockerManifest, 'm', { platform: { architecture: 'amd64', os: 'linux' } }),
      ],
    };
    expect(parseManifest(bytesOf(list), MediaTypes.dockerManifestList)).toMatchObject({
      kind: 'index',
      mediaType: MediaTypes.dockerManifestList,
    });
  });

  it('parses an OCI 1.1 artifact with subject, annotations and embedded data', () => {
    const artifact = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      artifactType: CocoonMediaTypes.snapshotArtifact,
      config: {
        mediaType: MediaTypes.ociEmpty,
        digest: blob('a/b', '{}').digest,
        size: 2,
        data: 'e30=',
      },
      layers: [
        blob(CocoonMediaTypes.vmMemory, 'mem', {
          annotations: { 'org.opencontainers.image.title': 'memory-ranges' },
          urls: ['https://example.com/mem'],
        }),
      ],
      subject: blob(MediaTypes.ociManifest, 'subject'),
      annotations: { 'org.opencontainers.image.created': '2026-04-24T00:00:00Z' },
    };
    expect(parseManifest(bytesOf(artifact)).manifest).toEqual(artifact);
  });

  it('accepts empty layers and sha512 descriptors', () => {
    const doc = {
      ...ociManifest,
      config: { ...config, digest: `sha512:${'d'.repeat(128)}` },
      layers: [],
    };
    expect(parseManifest(bytesOf(doc)).manifest).toEqual(doc);
  });

  it('reads layers: null and manifests: null (go-containerregistry) as empty lists', () => {
    const manifest = parseManifest(bytesOf({ ...ociManifest, layers: null }));
    expect(manifest.kind === 'manifest' && manifest.manifest.layers).toEqual([]);
    const index = parseManifest(bytesOf({ ...ociIndex, manifests: null }));
    expect(index.kind === 'index' && index.manifest.manifests).toEqual([]);
  });

  it('preserves unknown fields at every level', () => {
    const doc = {
      ...ociManifest,
      'x-top': { nested: [1, 2, 3] },
      config: { ...config, 'x-config': true },
      layers: [{ ...layer0, 'x-layer': 'kept' }],
    };
    expect(parseManifest(bytesOf(doc)).manifest).toEqual(doc);
    const index = {
      ...ociIndex,
      manifests: [{ ...child, platform: { ...child.platform, 'x-platform': 1 } }],
    };
    expect(parseManifest(bytesOf(index)).manifest).toEqual(index);
  });
});

describe('parseManifest: rejected documents', () => {
  it.each([
    ['', 'empty'],
    ['not json', 'garbage'],
    ['{"schemaVersion":2,', 'truncated'],
    ['[]', 'array'],
    ['null', 'null'],
    ['2', 'number'],
    ['"manifest"', 'string'],
  ])('rejects %j (%s)', (text) => {
    expect(failure(text).code).toBe('MANIFEST_INVALID');
  });

  it('rejects invalid UTF-8', () => {
    const bytes = new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]);
    expect(failure(bytes).message).toContain('UTF-8');
  });

  it.each([
    [{ ...ociManifest, schemaVersion: undefined }, 'must be 2'],
    [{ ...ociManifest, schemaVersion: 1 }, 'schema 1'],
    [{ ...ociManifest, schemaVersion: '2' }, 'must be 2'],
    [{ ...ociManifest, schemaVersion: 3 }, 'must be 2'],
  ])('rejects schemaVersion %#', (doc, fragment) => {
    const error = failure(doc);
    expect(error).toMatchObject({ code: 'MANIFEST_INVALID', field: 'schemaVersion' });
    expect(error.message).toContain(fragment);
  });

  it('rejects an index sent as a manifest and vice versa (type confusion)', () => {
    expect(failure(ociIndex, MediaTypes.ociManifest)).toMatchObject({
      code: 'MANIFEST_INVALID',
      field: 'mediaType',
    });
    expect(failure(ociManifest, MediaTypes.ociIndex)).toMatchObject({ field: 'mediaType' });
    expect(failure(ociManifest, MediaTypes.dockerManifest)).toMatchObject({ field: 'mediaType' });
  });

  it('rejects a manifest carrying manifests and an index carrying config or layers', () => {
    expect(failure({ ...ociManifest, manifests: [] })).toMatchObject({ field: 'manifests' });
    expect(failure({ ...ociIndex, config })).toMatchObject({ field: 'config' });
    expect(failure({ ...ociIndex, layers: [] })).toMatchObject({ field: 'layers' });
    const { mediaType: _, ...bare } = ociManifest;
    expect(failure(bare, MediaTypes.ociIndex)).toMatchObject({ field: 'config' });
  });

  it('refuses to guess when the shape is ambiguous or empty', () => {
    expect(failure({ schemaVersion: 2, manifests: [], layers: [] }).message).toContain(
      'cannot tell',
    );
    expect(failure({ schemaVersion: 2 }).message).toContain('cannot tell');
  });

  it.each([
    'application/vnd.docker.distribution.manifest.v1+prettyjws',
    'application/vnd.docker.distribution.manifest.v1+json',
    'application/vnd.oci.artifact.manifest.v1+json',
    'application/json',
    'text/plain',
    MediaTypes.ociConfig,
  ])('rejects the declared type %s', (declared) => {
    const error = failure(ociManifest, declared);
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.message).toContain('unsupported manifest media type');
  });

  it('rejects an unknown or non-string mediaType field', () => {
    expect(failure({ ...ociManifest, mediaType: 'application/vnd.example+json' })).toMatchObject({
      field: 'mediaType',
    });
    expect(failure({ ...ociManifest, mediaType: 42 })).toMatchObject({ field: 'mediaType' });
  });

  it('requires the mediaType field in Docker manifests', () => {
    const { mediaType: _, ...bare } = ociManifest;
    expect(failure(bare, MediaTypes.dockerManifest)).toMatchObject({ field: 'mediaType' });
  });

  it.each<[string, unknown, string]>([
    ['config missing', { ...ociManifest, config: undefined }, 'config'],
    ['layers missing', { ...ociManifest, layers: undefined }, 'layers'],
    ['layers not a list', { ...ociManifest, layers: {} }, 'layers'],
    ['config not an object', { ...ociManifest, config: 'x' }, 'config'],
    ['bad digest', withLayer({ digest: 'sha256:1234' }), 'layers[1].digest'],
    ['uppercase digest', withLayer({ digest: `sha256:${'A'.repeat(64)}` }), 'layers[1].digest'],
    ['md5 digest', withLayer({ digest: `md5:${'a'.repeat(32)}` }), 'layers[1].digest'],
    ['missing digest', withLayer({ digest: undefined }), 'layers[1].digest'],
    ['negative size', withLayer({ size: -1 }), 'layers[1].size'],
    ['fractional size', withLayer({ size: 1.5 }), 'layers[1].size'],
    ['string size', withLayer({ size: '10' }), 'layers[1].size'],
    ['unsafe size', withLayer({ size: 2 ** 53 }), 'layers[1].size'],
    ['missing size', withLayer({ size: undefined }), 'layers[1].size'],
    ['empty media type', withLayer({ mediaType: '' }), 'layers[1].mediaType'],
    ['media type with spaces', withLayer({ mediaType: 'text/ plain' }), 'layers[1].mediaType'],
    ['media type without subtype', withLayer({ mediaType: 'tar' }), 'layers[1].mediaType'],
    ['first layer', withLayer({ digest: 'x' }, 0), 'layers[0].digest'],
    [
      'config digest',
      { ...ociManifest, config: { ...config, digest: HEX_A.toUpperCase() } },
      'config.digest',
    ],
    [
      'annotation value',
      withLayer({ annotations: { 'org.example': 1 } }),
      'layers[1].annotations["org.example"]',
    ],
    ['manifest annotations', { ...ociManifest, annotations: [] }, 'annotations'],
    ['data not base64', withLayer({ data: 'not base64!' }), 'layers[1].data'],
    ['urls not strings', withLayer({ urls: [1] }), 'layers[1].urls[0]'],
    ['artifactType', { ...ociManifest, artifactType: 'nope' }, 'artifactType'],
    [
      'subject digest',
      { ...ociManifest, subject: { ...config, digest: 'sha256:' } },
      'subject.digest',
    ],
  ])('rejects %s, naming %s', (_label, doc, field) => {
    const error = failure(doc);
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.field).toBe(field);
    expect(error.message.startsWith(`${field}: `)).toBe(true);
  });

  it('says why a digest is invalid', () => {
    const error = failure(withLayer({ digest: 'sha256:1234' }));
    expect(error.message).toMatch(/^layers\[1\]\.digest: invalid digest .*needs 64 hex characters/);
  });

  it.each<[string, unknown, string]>([
    ['manifests missing', { schemaVersion: 2, mediaType: MediaTypes.ociIndex }, 'manifests'],
    [
      'child digest',
      { ...ociIndex, manifests: [{ ...child, digest: 'nope' }] },
      'manifests[0].digest',
    ],
    [
      'platform without os',
      { ...ociIndex, manifests: [{ ...child, platform: { architecture: 'amd64' } }] },
      'manifests[0].platform.os',
    ],
    [
      'platform features',
      {
        ...ociIndex,
        manifests: [
          { ...child, platform: { architecture: 'amd64', os: 'linux', features: 'sse4' } },
        ],
      },
      'manifests[0].platform.features',
    ],
  ])('rejects an index with %s', (_label, doc, field) => {
    const error = failure(doc);
    expect(error).toMatchObject({ code: 'MANIFEST_INVALID', field });
  });
});

describe('referenced content', () => {
  it('lists config then layers, without the subject', () => {
    const parsed = parseManifest(bytesOf({ ...ociManifest, subject: child }));
    if (parsed.kind !== 'manifest') throw new Error('expected a manifest');
    expect(referencedBlobs(parsed.manifest)).toEqual([config, layer0, layer1]);
  });

  it('lists the children of an index, without the subject', () => {
    const parsed = parseManifest(bytesOf({ ...ociIndex, subject: config }));
    if (parsed.kind !== 'index') throw new Error('expected an index');
    expect(referencedManifests(parsed.manifest)).toEqual(ociIndex.manifests);
    referencedManifests(parsed.manifest).pop();
    expect(parsed.manifest.manifests).toHaveLength(2);
  });
});

describe('round trips', () => {
  const safeKey = fc
    .string({ unit: fc.constantFrom(...'abcxyz.-_'), minLength: 1, maxLength: 12 })
    .filter((key) => !['__proto__', 'constructor'].includes(key));
  const unknownFields = fc.dictionary(
    safeKey.map((key) => `x-${key}`),
    jsonValue(2),
    { maxKeys: 3 },
  );
  const digest = fc
    .uint8Array({ minLength: 32, maxLength: 32 })
    .map((b) => `sha256:${Buffer.from(b).toString('hex')}` as Digest);
  const mediaType = fc.constantFrom(
    MediaTypes.ociLayerGzip,
    CocoonMediaTypes.diskQcow2Part,
    CocoonMediaTypes.vmMemory,
    'text/plain',
  );
  const annotations = fc.dictionary(safeKey, fc.string(), { maxKeys: 3 });
  const descriptor = fc
    .record(
      {
        mediaType,
        digest,
        size: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        annotations,
        extra: unknownFields,
      },
      { requiredKeys: ['mediaType', 'digest', 'size', 'extra'] },
    )
    .map(({ extra, ...known }) => ({ ...extra, ...known }) as Descriptor);

  function roundTrip(doc: unknown, declared: string): void {
    const first = parseManifest(bytesOf(doc), declared);
    expect(first.manifest).toEqual(doc);
    const second = parseManifest(JSON.stringify(first.manifest), declared);
    expect(second).toEqual(first);
  }

  it('keeps manifests, including unknown fields, through parse → stringify → parse', () => {
    fc.assert(
      fc.property(
        descriptor,
        fc.array(descriptor, { maxLength: 5 }),
        fc.option(descriptor, { nil: undefined }),
        unknownFields,
        (configDescriptor, layers, subject, extra) => {
          const doc: Record<string, unknown> = {
            ...extra,
            schemaVersion: 2,
            mediaType: MediaTypes.ociManifest,
            config: configDescriptor,
            layers,
          };
          if (subject) doc.subject = subject;
          roundTrip(doc, MediaTypes.ociManifest);
        },
      ),
    );
  });

  it('keeps indexes, including unknown fields, through parse → stringify → parse', () => {
    const platform = fc.record(
      {
        architecture: fc.constantFrom('amd64', 'arm64'),
        os: fc.constant('linux'),
        variant: fc.constantFrom('v7', 'v8'),
      },
      { requiredKeys: ['architecture', 'os'] },
    );
    const entry = fc
      .tuple(descriptor, fc.option(platform, { nil: undefined }))
      .map(([d, p]) => (p ? { ...d, mediaType: MediaTypes.ociManifest, platform: p } : d));
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 5 }), unknownFields, (manifests, extra) => {
        roundTrip(
          { ...extra, schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests },
          MediaTypes.ociIndex,
        );
      }),
    );
  });

  it('never throws anything but OciValidationError on arbitrary JSON', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.record({
            schemaVersion: fc.constant(2),
            layers: fc.jsonValue(),
            config: fc.jsonValue(),
          }),
        ),
        fc.constantFrom(undefined, '', MediaTypes.ociManifest, MediaTypes.ociIndex, 'x/y'),
        (doc, declared) => {
          try {
            parseManifest(JSON.stringify(doc), declared);
          } catch (error) {
            expect(error).toBeInstanceOf(OciValidationError);
          }
        },
      ),
    );
  });
});
