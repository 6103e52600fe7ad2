#!/usr/bin/env node
// A stand-in for cocoon, shipped with the tests. It keeps snapshots and images in
// $FAKE_COCOON_ROOT and implements just what epoch drives:
//   cocoon snapshot export NAME -o -          tar on stdout: snapshot.json, then one entry per
//                                            file; sparse files (runs of zero 4 KiB blocks) as
//                                            COCOON.sparse.map / COCOON.sparse.size PAX records
//   cocoon snapshot import [--name N] [--description D]   the reverse, from stdin
//   cocoon image import NAME                  stdin → images/NAME
// FAKE_COCOON_EXPORT_EXIT=1 makes an export fail after writing its whole stream.
// Imports land under a temporary name and are renamed into place only after the whole input
// arrived intact. $FAKE_COCOON_ROOT/log records "<pid> start|ok|failed …" per run, so a test can
// tell an importer that was killed (start only) from one that saw the end of its input.
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  constants,
  createReadStream,
  existsSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

const BLOCK = 4096;
const ZERO = Buffer.alloc(BLOCK);
/** Bytes per read of a file (the export's cost is a test's overhead, not what it measures). */
const READ = 1024 * 1024;
const root = process.env.FAKE_COCOON_ROOT;
if (!root) {
  process.stderr.write('fake cocoon: FAKE_COCOON_ROOT is not set\n');
  process.exit(2);
}
const args = process.argv.slice(2);
const log = (what) => appendFileSync(join(root, 'log'), `${process.pid} ${what}\n`);
mkdirSync(join(root, 'snapshots'), { recursive: true });
mkdirSync(join(root, 'images'), { recursive: true });

function flag(name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Whether `buf[from, to)` holds only zero bytes (most data blocks fail at the first word). */
function allZero(buf, from, to) {
  if (to - from >= 4 && buf.readUInt32LE(from) !== 0) return false;
  return buf.compare(ZERO, 0, to - from, from, to) === 0;
}

// Lists a file's extents that hold data (SEEK_DATA/SEEK_HOLE, as the real cocoon finds them),
// as JSON [[offset, length], ...]. Node has no lseek; Debian's python3 does.
const EXTENTS_PY = `import errno, json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
out = []
pos = 0
while pos < size:
    try:
        start = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError as e:
        if e.errno != errno.ENXIO:
            raise
        break
    end = os.lseek(fd, start, os.SEEK_HOLE)
    if end <= start:
        sys.exit(3)
    out.append([start, end - start])
    pos = end
print(json.dumps(out))`;

/**
 * The 4 KiB-aligned ranges of a file that may hold data: its extents when python3 can list them
 * (a filesystem hole reads as zeros, so blocks outside them are zero and need not be read),
 * else the whole file. Only a shortcut: the segments found are the same either way.
 */
function candidateRanges(path, size) {
  // Any failure (no python3, a file system without SEEK_DATA, a timeout) means: read it all.
  const listed = spawnSync('python3', ['-c', EXTENTS_PY, path], {
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (listed.status !== 0) return [[0, size]];
  const ranges = [];
  for (const [o, l] of JSON.parse(listed.stdout)) {
    const from = Math.floor(o / BLOCK) * BLOCK;
    const to = Math.min(size, Math.ceil((o + l) / BLOCK) * BLOCK);
    const last = ranges[ranges.length - 1];
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else ranges.push([from, to]);
  }
  return ranges;
}

/** Data segments of a file: maximal runs of 4 KiB blocks that are not all zero. */
function segments(path) {
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(READ);
  const out = [];
  let run;
  for (const [from, to] of candidateRanges(path, size)) {
    let offset = from;
    while (offset < to) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, to - offset), offset);
      if (n === 0) break;
      for (let b = 0; b < n; b += BLOCK) {
        const end = Math.min(b + BLOCK, n);
        if (!allZero(buf, b, end)) {
          if (run && run.o + run.l === offset + b) run.l += end - b;
          else {
            run = { o: offset + b, l: end - b };
            out.push(run);
          }
        }
      }
      offset += n;
    }
  }
  closeSync(fd);
  return { size, segments: out };
}

async function* segmentBytes(path, segs) {
  const fd = openSync(path, 'r');
  for (const { o, l } of segs) {
    let done = 0;
    while (done < l) {
      // A new buffer per read: the tar stream keeps what it was given until it is written.
      const buf = Buffer.allocUnsafeSlow(Math.min(READ, l - done));
      const n = readSync(fd, buf, 0, buf.length, o + done);
      done += n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
  }
  closeSync(fd);
}

async function writeEntry(pack, header, body) {
  await new Promise((resolve, reject) => {
    const entry = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    (async () => {
      for await (const chunk of body) {
        if (!entry.write(chunk)) await new Promise((r) => entry.once('drain', r));
      }
      entry.end();
    })().catch(reject);
  });
}

async function exportSnapshot(name) {
  const dir = join(root, 'snapshots', name);
  if (!existsSync(dir)) throw new Error(`snapshot ${name} not found`);
  const pack = tar.pack();
  const piped = pipeline(pack, process.stdout);
  const mtime = new Date(0);
  const envelope = readFileSync(join(dir, 'snapshot.json'));
  await writeEntry(pack, { name: 'snapshot.json', size: envelope.length, mode: 0o644, mtime }, [
    envelope,
  ]);
  for (const file of readdirSync(dir).sort()) {
    if (file === 'snapshot.json') continue;
    const path = join(dir, file);
    const mode = statSync(path).mode & 0o777;
    const { size, segments: segs } = segments(path);
    const sparse = !(segs.length === 1 && segs[0].o === 0 && segs[0].l === size) && size > 0;
    const dataSize = segs.reduce((s, x) => s + x.l, 0);
    if (sparse) {
      await writeEntry(
        pack,
        {
          name: file,
          size: dataSize,
          mode,
          mtime,
          pax: { 'COCOON.sparse.map': JSON.stringify(segs), 'COCOON.sparse.size': String(size) },
        },
        segmentBytes(path, segs),
      );
    } else {
      await writeEntry(
        pack,
        { name: file, size, mode, mtime },
        size > 0 ? createReadStream(path) : [],
      );
    }
  }
  pack.finalize();
  await piped;
  // Tests: a complete stream followed by a failure status must not be taken for success.
  if (process.env.FAKE_COCOON_EXPORT_EXIT)
    throw new Error('export failed (FAKE_COCOON_EXPORT_EXIT)');
}

async function importSnapshot() {
  const tmp = join(root, 'snapshots', `.importing-${process.pid}`);
  mkdirSync(tmp);
  try {
    const extract = tar.extract();
    const done = pipeline(process.stdin, extract);
    done.catch(() => {});
    let name;
    for await (const entry of extract) {
      const { header } = entry;
      if (header.type !== 'file') {
        entry.resume();
        continue;
      }
      if (header.name === 'snapshot.json') {
        const chunks = [];
        for await (const c of entry) chunks.push(c);
        let bytes = Buffer.concat(chunks);
        const doc = JSON.parse(bytes.toString('utf8'));
        if (doc.version !== 1) throw new Error('snapshot.json: version must be 1');
        const newName = flag('--name');
        const description = flag('--description');
        name = newName ?? doc.config?.name;
        if ((newName !== undefined && newName !== doc.config?.name) || description !== undefined) {
          if (newName !== undefined) doc.config.name = newName;
          if (description !== undefined) doc.config.description = description;
          bytes = Buffer.from(`${JSON.stringify(doc)}\n`);
        }
        const fd = openSync(join(tmp, 'snapshot.json'), 'w', 0o644);
        writeSync(fd, bytes);
        closeSync(fd);
        continue;
      }
      const fd = openSync(
        join(tmp, header.name),
        constants.O_CREAT | constants.O_WRONLY,
        header.mode,
      );
      const pax = header.pax ?? {};
      const map = pax['COCOON.sparse.map']
        ? JSON.parse(pax['COCOON.sparse.map'])
        : [{ o: 0, l: header.size }];
      if (pax['COCOON.sparse.size']) ftruncateSync(fd, Number(pax['COCOON.sparse.size']));
      let seg = 0;
      let within = 0;
      for await (const chunk of entry) {
        let at = 0;
        while (at < chunk.length) {
          while (map[seg] && within === map[seg].l) {
            seg++;
            within = 0;
          }
          const s = map[seg];
          if (!s) throw new Error(`${header.name}: more data than its sparse map`);
          const n = Math.min(chunk.length - at, s.l - within);
          writeSync(fd, chunk, at, n, s.o + within);
          at += n;
          within += n;
        }
      }
      closeSync(fd);
    }
    await done;
    if (!name) throw new Error('no snapshot.json in the input');
    const dest = join(root, 'snapshots', name);
    if (existsSync(dest)) throw new Error(`snapshot ${name} already exists`);
    renameSync(tmp, dest);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

async function importImage(name) {
  const tmp = join(root, 'images', `.importing-${process.pid}`);
  const fd = openSync(tmp, 'w');
  try {
    for await (const chunk of process.stdin) writeSync(fd, chunk);
    closeSync(fd);
    renameSync(tmp, join(root, 'images', name));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

log(`start ${args.join(' ')}`);
try {
  const [group, verb] = args;
  if (group === 'snapshot' && verb === 'export') await exportSnapshot(args[2]);
  else if (group === 'snapshot' && verb === 'import') await importSnapshot();
  else if (group === 'image' && verb === 'import') await importImage(args[2]);
  else throw new Error(`unsupported: ${args.join(' ')}`);
  log('ok');
} catch (err) {
  log(`failed ${err.message}`);
  process.stderr.write(`fake cocoon: ${err.message}\n`);
  process.exit(1);
}
