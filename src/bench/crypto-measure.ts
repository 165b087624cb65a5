/**
 * Timing and allocation probes for the cells of `npm run bench:crypto`.
 *
 * Time is wall time (performance.now, like `openssl speed -elapsed`), read once per
 * chunk of calls sized to about {@link CHUNK_MS}, so reading the clock costs nothing
 * measurable and a slow backend overshoots its budget by at most one chunk.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** A chunk of calls between clock reads, ms. */
const CHUNK_MS = 2;

export interface Runner {
  readonly recordsPerCall: number;
  run(calls: number): void;
}

export interface Sample {
  /** Records sealed. */
  records: number;
  /** Wall seconds they took. */
  seconds: number;
  /** records / seconds. */
  packetsPerSec: number;
}

/** Calls per chunk found for each runner, so warm-up calibrates once and the reps reuse it. */
const chunks = new WeakMap<Runner, number>();

function chunkOf(r: Runner): number {
  let calls = chunks.get(r);
  if (calls !== undefined) return calls;
  calls = 1;
  // Doubling until a chunk takes CHUNK_MS; the calls made here are warm-up too.
  for (;;) {
    const t0 = performance.now();
    r.run(calls);
    if (performance.now() - t0 >= CHUNK_MS || calls >= 1 << 20) break;
    calls *= 2;
  }
  chunks.set(r, calls);
  return calls;
}

/**
 * Runs `r` for about `seconds` (at least one chunk) and returns what it sealed.
 * Synchronous on purpose: nothing else runs on this thread meanwhile.
 */
export function timeRunner(r: Runner, seconds: number): Sample {
  const chunk = chunkOf(r);
  const budgetMs = seconds * 1000;
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    r.run(chunk);
    calls += chunk;
    t = performance.now();
  } while (t - t0 < budgetMs);
  const secs = (t - t0) / 1000;
  const records = calls * r.recordsPerCall;
  return { records, seconds: secs, packetsPerSec: records / secs };
}

/** Best (highest) rate of `samples`; noise on a shared machine only ever slows a run. */
export function best(samples: readonly Sample[]): Sample {
  if (samples.length === 0) throw new Error('best() of no samples');
  return samples.reduce((a, b) => (b.packetsPerSec > a.packetsPerSec ? b : a));
}

export interface AllocProbe {
  /** Records sealed during the probe. */
  records: number;
  /** Growth of V8's used heap over the run, bytes (meaningful when `gcs` is 0). */
  heapUsedDelta: number;
  /** Growth of memory held by ArrayBuffers (Buffers included), bytes. */
  arrayBuffersDelta: number;
  /** Garbage collections that ran during the probe: an allocation-free loop triggers none. */
  gcs: number;
  /** The deltas scaled to 10^6 records, bytes. */
  heapPerMillion: number;
  arrayBuffersPerMillion: number;
  /**
   * Heap bytes allocated per record: heapUsedDelta / records when no GC ran, else from a
   * probe of 1/100 the records that ran without GC; null when that one collected too.
   */
  bytesPerRecord: number | null;
}

/** Heap growth (bytes) a probe may show regardless of its length: the two memoryUsage() readings allocate a few hundred bytes. */
export const ALLOC_SLACK = 2048;

/**
 * True when the probe shows no per-record allocation: no GC ran, and neither the heap
 * nor ArrayBuffers grew by more than {@link ALLOC_SLACK} plus 1 byte per 8 records (the
 * smallest V8 object, a heap number, is 16 bytes: one per record, or one per call of a
 * batch of 16, would exceed it).
 */
export function allocationFree(p: AllocProbe): boolean {
  const limit = ALLOC_SLACK + p.records / 8;
  return p.gcs === 0 && p.heapUsedDelta <= limit && p.arrayBuffersDelta <= limit;
}

async function probeOnce(r: Runner, calls: number): Promise<{ heap: number; ab: number; gcs: number }> {
  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    gcs += list.getEntries().length;
  });
  obs.observe({ entryTypes: ['gc'] });
  await nextTurn();
  gcs = 0;
  const before = process.memoryUsage();
  r.run(calls);
  const after = process.memoryUsage();
  // GC entries reach the observer on a later turn of the event loop.
  await nextTurn();
  await nextTurn();
  obs.disconnect();
  return { heap: after.heapUsed - before.heapUsed, ab: after.arrayBuffers - before.arrayBuffers, gcs };
}

/**
 * Seals about `records` records with `r` between two readings of process.memoryUsage()
 * and counts the GCs in between (PerformanceObserver 'gc' entries). A loop that
 * allocates per record shows a growing heap, or GCs (which hide the growth); one that
 * does not shows neither. Async only because GC entries are delivered on a later turn.
 */
export async function allocProbe(r: Runner, records: number): Promise<AllocProbe> {
  const calls = Math.max(1, Math.round(records / r.recordsPerCall));
  r.run(Math.min(calls, 1000)); // lazy first-call allocations happen before the readings
  const p = await probeOnce(r, calls);
  const n = calls * r.recordsPerCall;
  let bytesPerRecord: number | null = p.gcs === 0 ? Math.max(0, p.heap) / n : null;
  if (p.gcs > 0) {
    const small = Math.max(1, Math.round(calls / 100));
    const q = await probeOnce(r, small);
    if (q.gcs === 0) bytesPerRecord = Math.max(0, q.heap) / (small * r.recordsPerCall);
  }
  return {
    records: n,
    heapUsedDelta: p.heap,
    arrayBuffersDelta: p.ab,
    gcs: p.gcs,
    heapPerMillion: (p.heap / n) * 1e6,
    arrayBuffersPerMillion: (p.ab / n) * 1e6,
    bytesPerRecord,
  };
}
