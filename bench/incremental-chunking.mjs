// Chooses the chunking rule of incremental snapshots (docs/incremental-snapshots.md) by
// measurement, before any code depends on it. Two parts:
//   1. the workload at full scale, simulated page by page (no bytes needed): for fixed
//      page-aligned chunks of 4…64 KiB, the bytes one version sends (new chunks + its indexes)
//      against the 4 KiB-granularity change set and the budget (2× change + 1% logical);
//   2. real bytes at 1/16 scale: fixed 8 KiB chunks against content-defined chunking (a gear
//      rolling hash, FastCDC-style, min 2 KiB / avg 8 KiB / max 64 KiB), bytes a version's
//      changes dirty; and the sha256 cost per chunk size on this machine.
// Run: node bench/incremental-chunking.mjs [seed]
import { createHash, randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const PAGE = 4 * KiB;
const RECORD = 48; // bytes of one index record (see the spec)

let seed = Number(process.argv[2] ?? 1);
function random() {
  // mulberry32: reproducible runs
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randInt = (n) => Math.floor(random() * n);

/**
 * The memory file's layout: `segments` data runs of equal size separated by holes of the same
 * size, so half of `size` is data. Returns page numbers of the data pages' starts per segment.
 */
function layout(size, segments) {
  const seg = size / (2 * segments);
  return Array.from({ length: segments }, (_, i) => ({ o: 2 * i * seg, l: seg }));
}

/** Changed data pages of one version: 5% of data pages, half single pages, half 64K–1M runs. */
function changedPages(segs) {
  const dataPages = segs.reduce((s, x) => s + x.l, 0) / PAGE;
  const target = Math.round(dataPages * 0.05);
  const pageAt = (k) => {
    // the k-th data page's file page number
    const perSeg = segs[0].l / PAGE;
    const s = Math.floor(k / perSeg);
    return segs[s].o / PAGE + (k % perSeg);
  };
  const pages = new Set();
  while (pages.size < target / 2) pages.add(pageAt(randInt(dataPages)));
  const half = pages.size;
  let inRuns = 0;
  while (inRuns < target - half) {
    const len = 16 + randInt(241); // 64 KiB … 1 MiB
    const start = randInt(dataPages - len);
    for (let i = 0; i < len; i++) {
      const p = pageAt(start + i);
      if (!pages.has(p)) inRuns++;
      pages.add(p);
    }
  }
  return pages;
}

function simulate() {
  const memSize = 4 * GiB;
  const segs = layout(memSize, 64);
  const dataBytes = segs.reduce((s, x) => s + x.l, 0);
  const overlay0 = GiB;
  const growth = 50 * MiB;
  const sizes = [4, 8, 16, 32, 64].map((k) => k * KiB);
  const rows = [];
  const versions = 9;
  const totals = new Map(sizes.map((c) => [c, 0]));
  let changeTotal = 0;
  let budgetTotal = 0;
  for (let v = 2; v <= versions + 1; v++) {
    const pages = changedPages(segs);
    const overlay = overlay0 + (v - 1) * growth;
    // the overlay: 50 MiB appended plus the qcow2 header cluster's first page rewritten
    const changeBytes = pages.size * PAGE + growth + PAGE;
    const logical = memSize + overlay;
    const budget = 2 * changeBytes + 0.01 * logical;
    changeTotal += changeBytes;
    budgetTotal += budget;
    for (const c of sizes) {
      const per = c / PAGE;
      const chunks = new Set();
      for (const p of pages) chunks.add(Math.floor(p / per));
      const newBytes = chunks.size * c + growth + c;
      // one record per data chunk of each file (+ a few hole records for the memory file)
      const index = (dataBytes / c + overlay / c + 2 * segs.length) * RECORD;
      totals.set(c, totals.get(c) + newBytes + index);
      if (v === 2) rows.push({ c, newBytes, index, changeBytes, budget });
    }
  }
  console.log('1. full-scale simulation (4 GiB memory, half data; 1 GiB overlay +50 MiB/version)');
  console.log(
    `   change set of version 2 at 4 KiB granularity: ${(rows[0].changeBytes / MiB).toFixed(1)} MiB; budget ${(rows[0].budget / MiB).toFixed(1)} MiB`,
  );
  console.log(
    '   chunk | new chunks MiB | index MiB | sent MiB | sent/change | within budget | 9-version avg sent MiB',
  );
  for (const r of rows) {
    const sent = r.newBytes + r.index;
    console.log(
      `   ${String(r.c / KiB).padStart(3)} KiB | ${(r.newBytes / MiB).toFixed(1).padStart(14)} | ${(r.index / MiB).toFixed(1).padStart(9)} | ${(sent / MiB).toFixed(1).padStart(8)} | ${(sent / r.changeBytes).toFixed(2).padStart(11)} | ${(sent <= r.budget ? 'yes' : 'NO').padStart(13)} | ${(totals.get(r.c) / versions / MiB).toFixed(1)}`,
    );
  }
  console.log(
    `   (9 versions: change ${(changeTotal / versions / MiB).toFixed(1)} MiB/version on average, budget ${(budgetTotal / versions / MiB).toFixed(1)})`,
  );
}

/** Gear-hash content-defined chunk boundaries (FastCDC-like normalized chunking). */
function cdcBoundaries(buf, min, avg, max) {
  const gear = new Uint32Array(256);
  let s = 0x12345678;
  for (let i = 0; i < 256; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    gear[i] = s;
  }
  const bits = Math.log2(avg);
  const maskS = ((1 << (bits + 1)) - 1) << (32 - bits - 1); // harder before avg
  const maskL = ((1 << (bits - 1)) - 1) << (32 - bits + 1); // easier after avg
  const cuts = [];
  let start = 0;
  while (start < buf.length) {
    let h = 0;
    let i = start + min;
    const end = Math.min(start + max, buf.length);
    let cut = end;
    for (; i < end; i++) {
      h = ((h << 1) + gear[buf[i]]) >>> 0;
      const mask = i - start < avg ? maskS : maskL;
      if ((h & mask) >>> 0 === 0) {
        cut = i + 1;
        break;
      }
    }
    cuts.push(cut);
    start = cut;
  }
  return cuts;
}

function chunkHashes(buf, cuts) {
  const set = new Set();
  let s = 0;
  for (const c of cuts) {
    set.add(createHash('sha256').update(buf.subarray(s, c)).digest('base64'));
    s = c;
  }
  return set;
}

function fixedCuts(len, c) {
  const cuts = [];
  for (let o = c; o < len; o += c) cuts.push(o);
  cuts.push(len);
  return cuts;
}

function realBytes() {
  // 1/16 scale: 128 MiB of memory data (holes play no part in chunk choice), 64 MiB overlay.
  const memData = 128 * MiB;
  const v1 = Buffer.allocUnsafe(memData);
  randomFillSync(v1);
  const v2 = Buffer.from(v1);
  const segs = [{ o: 0, l: memData }];
  const pages = changedPages(segs);
  for (const p of pages) randomFillSync(v2, p * PAGE, PAGE);
  const change = pages.size * PAGE;
  console.log(
    `\n2. real bytes at 1/16 scale: ${memData / MiB} MiB of memory data, ${(change / MiB).toFixed(1)} MiB changed at 4 KiB granularity`,
  );
  const measure = (name, cuts1, cuts2) => {
    const a = chunkHashes(v1, cuts1);
    let newBytes = 0;
    let s = 0;
    let newChunks = 0;
    for (const c of cuts2) {
      const h = createHash('sha256').update(v2.subarray(s, c)).digest('base64');
      if (!a.has(h)) {
        newBytes += c - s;
        newChunks++;
      }
      s = c;
    }
    const index = cuts2.length * RECORD;
    console.log(
      `   ${name.padEnd(30)} chunks ${String(cuts2.length).padStart(7)} | new ${(newBytes / MiB).toFixed(1).padStart(6)} MiB in ${String(newChunks).padStart(6)} chunks | ${(newBytes / change).toFixed(2)}× change | index ${(index / MiB).toFixed(2)} MiB`,
    );
  };
  measure('fixed 8 KiB', fixedCuts(memData, 8 * KiB), fixedCuts(memData, 8 * KiB));
  measure('fixed 16 KiB', fixedCuts(memData, 16 * KiB), fixedCuts(memData, 16 * KiB));
  const t = performance.now();
  const c1 = cdcBoundaries(v1, 2 * KiB, 8 * KiB, 64 * KiB);
  const cdcMs = performance.now() - t;
  measure('CDC 2/8/64 KiB', c1, cdcBoundaries(v2, 2 * KiB, 8 * KiB, 64 * KiB));
  console.log(
    `   CDC boundary scan alone: ${(memData / MiB / (cdcMs / 1000)).toFixed(0)} MiB/s on one core (fixed chunking costs nothing)`,
  );

  console.log('\n3. sha256 of 512 MiB on one core, by chunk size (one createHash per chunk)');
  const data = v1.subarray(0, 128 * MiB);
  for (const c of [4, 8, 16, 64].map((k) => k * KiB)) {
    const t0 = performance.now();
    for (let r = 0; r < 4; r++)
      for (let o = 0; o < data.length; o += c)
        createHash('sha256')
          .update(data.subarray(o, o + c))
          .digest();
    const ms = performance.now() - t0;
    console.log(
      `   ${String(c / KiB).padStart(2)} KiB: ${((4 * data.length) / MiB / (ms / 1000)).toFixed(0)} MiB/s`,
    );
  }
  const zero = Buffer.alloc(8 * KiB);
  const t1 = performance.now();
  let zeros = 0;
  for (let r = 0; r < 4; r++)
    for (let o = 0; o < data.length; o += 8 * KiB)
      if (data.subarray(o, o + 8 * KiB).equals(zero)) zeros++;
  const zms = performance.now() - t1;
  console.log(
    `   zero test of 8 KiB chunks: ${((4 * data.length) / MiB / (zms / 1000)).toFixed(0)} MiB/s (${zeros} zero)`,
  );
}

simulate();
realBytes();
