import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  Annotations,
  CocoonMediaTypes,
  checkSnapshotFileName,
  DEFAULT_FILE_MODE,
  type Digest,
  ENVELOPE_CONFIG_FIELD,
  envelopeConfig,
  envelopeTarEntry,
  exportedFile,
  type ImageManifest,
  OciValidationError,
  type SnapshotConfig,
  snapshotConfig,
  snapshotFiles,
  snapshotImportEntries,
  snapshotLayer,
  snapshotManifest,
  snapshotTarEntry,
  type TarEntry,
  tarLength,
  tarStream,
} from '../src/index.js';

const d = (c: string): Digest => `sha256:${c.repeat(64)}`;

function manifestOf(titles: (string | undefined)[]): ImageManifest {
  return snapshotManifest(
    { digest: d('c'), size: 10 },
    titles.map((title, i) => ({
      ...snapshotLayer(title ?? 'x', d(String(i + 1)), 100 + i),
      ...(title === undefined ? { annotations: {} } : {}),
    })),
  );
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function readTar(bytes: Buffer) {
  const out: { name: string; mode?: number; pax?: Record<string, string>; body: string }[] = [];
  const ex = extract();
  Readable.from([bytes]).pipe(ex);
  for await (const entry of ex) {
    const body = (await collect(entry as unknown as AsyncIterable<Uint8Array>)).toString();
    out.push({
      name: entry.header.name,
      ...(entry.header.mode !== undefined ? { mode: entry.header.mode } : {}),
      ...(entry.header.pax ? { pax: entry.header.pax as Record<string, string> } : {}),
      body,
    });
  }
  return out;
}

describe('snapshotFiles', () => {
  it('lists the files in manifest order with their modes, 0640 when the config has none', () => {
    const config: SnapshotConfig = { files: { config: { mode: 0o600 } } };
    const files = snapshotFiles(manifestOf(['config', 'memory-ranges']), config);
    expect(files.map((f) => [f.name, f.size, f.mode])).toEqual([
      ['config', 100, 0o600],
      ['memory-ranges', 101, DEFAULT_FILE_MODE],
    ]);
    expect(DEFAULT_FILE_MODE).toBe(0o640);
  });

  it('reads a sparse map stored as a string or as a list', () => {
    const config: SnapshotConfig = {
      files: {
        a: { sparseMap: '[{"o":0,"l":4}]', sparseSize: 100 },
        b: { sparseMap: [{ o: 8, l: 2 }], sparseSize: 50 },
      },
    };
    const [a, b] = snapshotFiles(manifestOf(['a', 'b']), config);
    expect(a?.sparse).toEqual({ map: [{ o: 0, l: 4 }], size: 100 });
    expect(b?.sparse).toEqual({ map: [{ o: 8, l: 2 }], size: 50 });
  });

  it.each([
    ['no title', [undefined]],
    ['a title with a slash', ['a/b']],
    ['snapshot.json', ['snapshot.json']],
    ['a hidden file', ['.epoch-config.json']],
    ['..', ['..']],
    ['two layers with one title', ['disk', 'disk']],
  ])('refuses %s', (_what, titles) => {
    expect(() => snapshotFiles(manifestOf(titles), {})).toThrow(OciValidationError);
  });

  it('refuses a sparse map without a logical size, and a malformed one', () => {
    expect(() =>
      snapshotFiles(manifestOf(['mem']), { files: { mem: { sparseMap: '[]' } } }),
    ).toThrow(/sparse map without a logical size/);
    expect(() =>
      snapshotFiles(manifestOf(['mem']), {
        files: { mem: { sparseMap: '[{"o":-1,"l":1}]', sparseSize: 5 } },
      }),
    ).toThrow(OciValidationError);
  });

  it('does not read files records from the prototype', () => {
    const [file] = snapshotFiles(manifestOf(['constructor']), { files: {} });
    expect(file?.mode).toBe(DEFAULT_FILE_MODE);
  });
});

describe('snapshotTarEntry', () => {
  it('writes the sparse map in one canonical form, whatever the stored form', () => {
    const stored: SnapshotConfig = {
      files: {
        a: { sparseMap: '[ {"o": 0, "l": 4, "x": 1} ]', sparseSize: 9 },
        b: { sparseMap: [{ o: 0, l: 4 }], sparseSize: 9 },
      },
    };
    const records = snapshotFiles(manifestOf(['a', 'b']), stored).map(
      ({ layer: _, ...f }) => snapshotTarEntry(f, () => []).pax,
    );
    const canonical = { 'COCOON.sparse.map': '[{"o":0,"l":4}]', 'COCOON.sparse.size': '9' };
    expect(records).toEqual([canonical, canonical]);
  });
});

describe('snapshotImportEntries', () => {
  it('lists the envelope then the files, opening none, and refuses before any', () => {
    const opened: string[] = [];
    const open = (layer: { digest: string }) => {
      opened.push(layer.digest);
      return [];
    };
    const entries = snapshotImportEntries(manifestOf(['a', 'b']), {}, {}, open);
    expect(entries.map((e) => [e.name, e.size, e.mode])).toEqual([
      ['snapshot.json', 26, 0o644],
      ['a', 100, 0o640],
      ['b', 101, 0o640],
    ]);
    expect(opened).toEqual([]);
    expect(() => snapshotImportEntries(manifestOf(['a', '.b']), {}, {}, open)).toThrow(
      OciValidationError,
    );
  });
});

describe('exportedFile', () => {
  it('reads a plain entry: name without ./, mode (0640 when absent), entry size', () => {
    const seen = new Set<string>();
    expect(exportedFile({ name: './disk', size: 7, mode: 0o600 }, seen)).toEqual({
      name: 'disk',
      file: { mode: 0o600 },
      logicalSize: 7,
    });
    expect(exportedFile({ name: 'cfg', size: 1 }, seen).file.mode).toBe(DEFAULT_FILE_MODE);
  });

  it('reads a sparse entry and keeps the map as exported', () => {
    const raw = '[{"o":0,"l":4},{"o":8192,"l":4}]';
    const got = exportedFile(
      { name: 'mem', size: 8, pax: { 'COCOON.sparse.map': raw, 'COCOON.sparse.size': '16384' } },
      new Set(),
    );
    expect(got.file).toEqual({ mode: DEFAULT_FILE_MODE, sparseMap: raw, sparseSize: 16384 });
    expect(got.logicalSize).toBe(16384);
    expect(got.sparse?.map).toHaveLength(2);
  });

  it.each([
    ['a map without a size', { 'COCOON.sparse.map': '[]' }],
    ['a size that is not a number', { 'COCOON.sparse.map': '[]', 'COCOON.sparse.size': '1e3' }],
    ['an unreadable map', { 'COCOON.sparse.map': 'nope', 'COCOON.sparse.size': '3' }],
  ])('refuses %s', (_what, pax) => {
    expect(() => exportedFile({ name: 'mem', size: 0, pax }, new Set())).toThrow(
      OciValidationError,
    );
  });

  it('refuses the names a pull would refuse', () => {
    const seen = new Set<string>();
    exportedFile({ name: 'disk', size: 1 }, seen);
    for (const name of ['disk', './disk', '.hidden', 'snapshot.json', 'a/b', '']) {
      expect(() => exportedFile({ name, size: 1 }, seen)).toThrow(OciValidationError);
    }
  });

  it('round-trips through a config: the pull side reads what the push side wrote', () => {
    const seen = new Set<string>();
    const exported = [
      exportedFile({ name: 'disk', size: 5, mode: 0o600 }, seen),
      exportedFile(
        {
          name: 'mem',
          size: 4,
          pax: { 'COCOON.sparse.map': '[{"o":4,"l":4}]', 'COCOON.sparse.size': '64' },
        },
        seen,
      ),
    ];
    const envelope = '{"config":{"name":"vm","cpu":2},"version":1}\n';
    const config = snapshotConfig(
      envelope,
      Object.fromEntries(exported.map((e) => [e.name, e.file])),
    );
    const manifest = snapshotManifest({ digest: d('c'), size: 1 }, [
      snapshotLayer('disk', d('1'), 5),
      snapshotLayer('mem', d('2'), 4),
    ]);
    expect(manifest.artifactType).toBe(CocoonMediaTypes.snapshotArtifact);
    expect(manifest.layers[0]?.annotations?.[Annotations.title]).toBe('disk');
    expect(config.cpu).toBe(2);
    expect(config[ENVELOPE_CONFIG_FIELD]).toBe(envelope);
    const files = snapshotFiles(manifest, config).map(({ layer: _, ...f }) => f);
    expect(files).toEqual([
      { name: 'disk', size: 5, mode: 0o600 },
      {
        name: 'mem',
        size: 4,
        mode: DEFAULT_FILE_MODE,
        sparse: { map: [{ o: 4, l: 4 }], size: 64 },
      },
    ]);
  });
});

describe('envelopeConfig', () => {
  it('maps the envelope fields and keeps the envelope verbatim', () => {
    const text = '{"config":{"name":"vm","cpu":2,"queue_size":7,"odd":1},"version":1}';
    expect(envelopeConfig(text)).toEqual({ cpu: 2, queueSize: 7, envelope: text });
  });

  it.each([
    ['not JSON', '{'],
    ['another version', '{"version":2}'],
    ['no version', '{"config":{}}'],
    ['a config that is not an object', '{"version":1,"config":3}'],
    ['not an object', '1'],
  ])('refuses %s', (_what, text) => {
    expect(() => envelopeConfig(text)).toThrow(OciValidationError);
  });
});

describe('checkSnapshotFileName', () => {
  it('collects names and refuses a repeat', () => {
    const seen = new Set<string>();
    expect(checkSnapshotFileName('a', seen)).toBe('a');
    expect(() => checkSnapshotFileName('a', seen)).toThrow(/two files named a/);
  });
});

describe('tarStream', () => {
  const entries = (): TarEntry[] => [
    envelopeTarEntry(Buffer.from('{"version":1}')),
    snapshotTarEntry({ name: 'config', size: 3, mode: 0o600 }, () => [Buffer.from('abc')]),
    snapshotTarEntry(
      { name: 'mem', size: 4, mode: 0o640, sparse: { map: [{ o: 512, l: 4 }], size: 4096 } },
      async () => Readable.from([Buffer.from('wx'), Buffer.from('yz')]),
    ),
    { name: `long-${'n'.repeat(120)}`, size: 0, mode: 0o644, open: () => [] },
  ];

  it('writes exactly tarLength bytes, readable as a pax tar with modes and records', async () => {
    const bytes = await collect(tarStream(entries()));
    expect(bytes.length).toBe(tarLength(entries()));
    const read = await readTar(bytes);
    expect(read.map((e) => [e.name, e.mode, e.body])).toEqual([
      ['snapshot.json', 0o644, '{"version":1}'],
      ['config', 0o600, 'abc'],
      ['mem', 0o640, 'wxyz'],
      [`long-${'n'.repeat(120)}`, 0o644, ''],
    ]);
    expect(read[2]?.pax).toMatchObject({
      'COCOON.sparse.map': '[{"o":512,"l":4}]',
      'COCOON.sparse.size': '4096',
    });
  });

  it('fails before the end-of-archive blocks when a body is short or long', async () => {
    for (const body of [['ab'], ['abcd']]) {
      const chunks: Uint8Array[] = [];
      const bad: TarEntry = { name: 'f', size: 3, mode: 0o640, open: () => body.map(Buffer.from) };
      await expect(
        (async () => {
          for await (const chunk of tarStream([bad])) chunks.push(chunk);
        })(),
      ).rejects.toThrow(/f: /);
      expect(Buffer.concat(chunks).length).toBeLessThan(1024 + 512);
    }
  });

  it('opens an entry only when the stream reaches it', async () => {
    const opened: string[] = [];
    const lazy = (name: string): TarEntry => ({
      name,
      size: 1,
      mode: 0o640,
      open: () => {
        opened.push(name);
        return [Buffer.from('x')];
      },
    });
    const stream = tarStream([lazy('a'), lazy('b')]);
    await stream.next();
    expect(opened).toEqual([]);
    await stream.next();
    expect(opened).toEqual(['a']);
  });
});
