// Issue 3, security review of native/src/gcm.c: batch calls whose arguments are hostile.
// The bounds checked must be the bounds used, so the addon copies `layout` and `iv` into
// private memory before checking them. Regression tests for the review's findings, each
// asserting that nothing is written outside dst:
//   (a) dst aliases the layout: record 0's output rewrites record 1's layout words;
//   (b) openBatch's status aliases a layout word;
//   (c) a SharedArrayBuffer layout rewritten by a Worker thread during the calls;
//   (d) a batch of more than 2^20 records (the one allocation a layout may ask for).
// Each "escape" is arranged to land in a guard region of the same ArrayBuffer (not past
// it), so an addon that re-reads the layout fails these assertions instead of crashing.
// Skips with the loader's reason when the addon is unavailable.
import t from 'tap';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { packLayout, type BatchRecord } from '../../../src/crypto/batch.js';
import { nodeGcm } from '../../../src/crypto/backends/node-gcm.js';
import { nonce } from '../../../src/crypto/nonce.js';
import { ErrorCodes } from '../../../src/errors.js';
import { withNative } from '../../vectors/aead-backends.js';
import { codeOf } from '../../vectors/load.js';

const KEY = Buffer.alloc(32, 0x5c);
const IV = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaab', 'hex');
const COUNTER = 2 ** 32 - 1;
const FILL = 0xaa;
/** Guard bytes on each side of dst, inside the same ArrayBuffer. */
const GUARD = 64;

/** The 4 bytes of `v` as a Uint32Array element stores them on this machine. */
const wordBytes = (v: number): Buffer => Buffer.from(new Uint32Array([v]).buffer);
/** The 20 bytes of one layout record as stored in a Uint32Array. */
const recordBytes = (r: BatchRecord): Buffer => Buffer.from(packLayout([r]).buffer);

const ref = nodeGcm(KEY);
const sealRef = (i: number, pt: Uint8Array, aad: Uint8Array): Buffer => ref.seal(nonce(IV, COUNTER + i), pt, aad);

/** An ArrayBuffer of GUARD | dst (dstLen) | GUARD | extra, all FILL; views of its parts. */
function guarded(dstLen: number, extra = 0): { ab: ArrayBuffer; all: Uint8Array; dst: Uint8Array; guardsIntact: () => boolean } {
  const ab = new ArrayBuffer(GUARD + dstLen + GUARD + extra);
  const all = new Uint8Array(ab).fill(FILL);
  const dst = new Uint8Array(ab, GUARD, dstLen);
  const guardsIntact = (): boolean => all.subarray(0, GUARD).every((x) => x === FILL) && all.subarray(GUARD + dstLen, GUARD + dstLen + GUARD).every((x) => x === FILL);
  return { ab, all, dst, guardsIntact };
}

withNative(t, 'review (a): sealBatch with dst holding the layout: record 1 lands where the ORIGINAL layout said', (t, b) => {
  const D = 256;
  const L = 16; // the layout's byte offset inside dst
  const { ab, dst, guardsIntact } = guarded(D);
  const aad = Buffer.from('aad-aad-aad!');
  const rec1: BatchRecord = { srcOff: 40, len: 32, aadOff: 8, aadLen: 4, dstOff: 160 };
  // Where record 1 would go if the addon re-read its dstOff after record 0 was sealed:
  // 8 bytes before the end of dst, so its 48 bytes run 40 bytes into the trailing guard.
  const BAD = D - 8;
  const rec0: BatchRecord = { srcOff: 0, len: 40, aadOff: 0, aadLen: 8, dstOff: L };
  // Record 0's plaintext is chosen so that its CIPHERTEXT, written over layout words 5..9,
  // spells record 1 again with only dstOff changed (keystream = ciphertext of zeros).
  const ks = sealRef(0, Buffer.alloc(40), aad.subarray(0, 8));
  const src = Buffer.alloc(72);
  for (let i = 0; i < 40; i++) src[i] = (i * 37 + 11) & 0xff;
  const spell = recordBytes({ ...rec1, dstOff: BAD });
  for (let i = 0; i < 20; i++) src[20 + i] = ks[20 + i]! ^ spell[i]!;
  for (let i = 0; i < 32; i++) src[40 + i] = (i * 91 + 5) & 0xff;
  const want0 = sealRef(0, src.subarray(0, 40), aad.subarray(0, 8));
  const want1 = sealRef(1, src.subarray(40, 72), aad.subarray(8, 12));
  t.ok(want0.subarray(36, 40).equals(wordBytes(BAD)), 'fixture: record 0 ciphertext bytes 36..39 spell dstOff = dst.length - 8');

  const layout = new Uint32Array(ab, GUARD + L, 10);
  layout.set(packLayout([rec0, rec1]));
  const wantDst = Buffer.alloc(D, FILL);
  want0.copy(wantDst, rec0.dstOff);
  want1.copy(wantDst, rec1.dstOff);

  const ctx = b.gcmNew(KEY);
  t.equal(b.gcmSealBatch(ctx, IV, COUNTER, src, aad, dst, layout), 2, 'two records sealed');
  b.gcmFree(ctx);
  t.equal(layout[9], BAD, 'the layout in memory was rewritten during the call (the hazard happened)');
  t.ok(Buffer.from(dst).equals(wantDst), 'record 0 at its offset, record 1 at the ORIGINAL dstOff 160, every other byte of dst untouched');
  t.ok(guardsIntact(), 'the guard regions around dst are unchanged');
});

withNative(t, 'review (a): openBatch with dst holding the layout: record 1 opens where the ORIGINAL layout said', (t, b) => {
  const D = 256;
  const L = 16;
  const { ab, dst, guardsIntact } = guarded(D);
  const aad = Buffer.from('0123456789ab');
  // Sealed records in src: record 0 (40 + 16 bytes) at 0, record 1 (32 + 16) at 56.
  const rec1: BatchRecord = { srcOff: 56, len: 48, aadOff: 4, aadLen: 8, dstOff: 160 };
  const BAD = D - 8; // 32 bytes from there run 24 bytes into the trailing guard
  // Record 0's PLAINTEXT, written over layout words 0..9, spells record 1 with dstOff = BAD.
  const pt0 = Buffer.alloc(40, 0x11);
  recordBytes({ ...rec1, dstOff: BAD }).copy(pt0, 20);
  const pt1 = Buffer.alloc(32, 0x22);
  const src = Buffer.concat([sealRef(0, pt0, aad.subarray(0, 4)), sealRef(1, pt1, aad.subarray(4, 12))]);
  const rec0: BatchRecord = { srcOff: 0, len: 56, aadOff: 0, aadLen: 4, dstOff: L };
  const layout = new Uint32Array(ab, GUARD + L, 10);
  layout.set(packLayout([rec0, rec1]));
  const wantDst = Buffer.alloc(D, FILL);
  pt0.copy(wantDst, L);
  pt1.copy(wantDst, rec1.dstOff);
  const status = new Uint8Array(2).fill(7);

  const ctx = b.gcmNew(KEY);
  t.equal(b.gcmOpenBatch(ctx, IV, COUNTER, src, aad, dst, layout, status), 0, 'no record failed');
  b.gcmFree(ctx);
  t.same([...status], [1, 1], 'both verified');
  t.equal(layout[9], BAD, 'the layout in memory was rewritten during the call (the hazard happened)');
  t.ok(Buffer.from(dst).equals(wantDst), 'record 1 opened at the ORIGINAL dstOff 160, every other byte of dst untouched');
  t.ok(guardsIntact(), 'the guard regions around dst are unchanged');
});

withNative(t, "review (b): openBatch whose status aliases record 1's dstOff word: record 1 still lands where the ORIGINAL layout said", (t, b) => {
  // Record 1 ends exactly at the end of dst; its dstOff is 256 (low byte 0). Writing
  // status[0] = 1 into that low byte would make it 257: one byte past dst, into the guard.
  const len0 = 24;
  const len1 = 32;
  const D = 256 + len1;
  const { ab, dst, guardsIntact } = guarded(D, 40);
  const layoutOff = GUARD + D + GUARD;
  const aad = Buffer.from('status-aliasing');
  const pt0 = Buffer.alloc(len0, 0x33);
  const pt1 = Buffer.alloc(len1, 0x44);
  const src = Buffer.concat([sealRef(0, pt0, aad), sealRef(1, pt1, aad)]);
  const rec0: BatchRecord = { srcOff: 0, len: len0 + 16, aadOff: 0, aadLen: aad.length, dstOff: 0 };
  const rec1: BatchRecord = { srcOff: len0 + 16, len: len1 + 16, aadOff: 0, aadLen: aad.length, dstOff: 256 };
  const layout = new Uint32Array(ab, layoutOff, 10);
  layout.set(packLayout([rec0, rec1]));
  // status[0] and status[1] are the two low bytes of layout word 9 (record 1's dstOff) on a
  // little-endian machine; on a big-endian one, the two high bytes (harmless, still aliased).
  const status = new Uint8Array(ab, layoutOff + 36, 2);
  const wantDst = Buffer.alloc(D, FILL);
  pt0.copy(wantDst, 0);
  pt1.copy(wantDst, 256);

  const ctx = b.gcmNew(KEY);
  t.equal(b.gcmOpenBatch(ctx, IV, COUNTER, src, aad, dst, layout, status), 0, 'no record failed');
  b.gcmFree(ctx);
  t.same([...status], [1, 1], 'status bytes written (into the layout word)');
  t.not(layout[9], 256, 'record 1 dstOff in memory changed during the call (the hazard happened)');
  t.ok(Buffer.from(dst).equals(wantDst), 'both records at their ORIGINAL offsets, nothing else in dst touched');
  t.ok(guardsIntact(), 'the guard regions around dst are unchanged');
});

/** Worker body (CommonJS, eval): flips one layout word between a good and a bad value until told to stop. */
const FLIPPER = `
const { workerData, parentPort } = require('node:worker_threads');
const { layoutSab, ctlSab, word, good, bad } = workerData;
const l = new Uint32Array(layoutSab);
const ctl = new Int32Array(ctlSab);
let flips = 0;
let x = 0x9e3779b9;
Atomics.store(ctl, 1, 1);
while (Atomics.load(ctl, 0) === 0) {
  Atomics.store(l, word, bad);
  x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
  for (let i = x & 7; i > 0; i--) Atomics.load(ctl, 0);
  Atomics.store(l, word, good);
  for (let i = (x >>> 8) & 7; i > 0; i--) Atomics.load(ctl, 0);
  flips++;
}
parentPort.postMessage(flips);
`;

withNative(t, 'review (c): a SharedArrayBuffer layout rewritten by a Worker during 2 s of sealBatch: no crash, each call refused or written inside dst', async (t, b) => {
  const N = 8;
  const LEN = 64;
  const STRIDE = LEN + 16;
  const D = N * STRIDE;
  const GOOD = (N - 1) * STRIDE;
  const BAD = D - 40; // inside dst, but its 80 bytes would run 40 bytes into the guard
  const { dst, guardsIntact, all } = guarded(D);
  const src = Buffer.alloc(N * LEN);
  for (let i = 0; i < src.length; i++) src[i] = (i * 7 + 3) & 0xff;
  const aad = Buffer.from('shared-layout');
  const layoutSab = new SharedArrayBuffer(N * 5 * 4);
  const layout = new Uint32Array(layoutSab);
  layout.set(packLayout(Array.from({ length: N }, (_, i) => ({ srcOff: i * LEN, len: LEN, aadOff: 0, aadLen: aad.length, dstOff: i * STRIDE }))));
  const wantDst = Buffer.alloc(D);
  for (let i = 0; i < N; i++) sealRef(i, src.subarray(i * LEN, (i + 1) * LEN), aad).copy(wantDst, i * STRIDE);

  const ctlSab = new SharedArrayBuffer(8);
  const ctl = new Int32Array(ctlSab);
  const worker = new Worker(FLIPPER, { eval: true, workerData: { layoutSab, ctlSab, word: (N - 1) * 5 + 4, good: GOOD, bad: BAD } });
  const flipsP = once(worker, 'message');
  const exited = once(worker, 'exit');
  await once(worker, 'online');
  while (Atomics.load(ctl, 1) === 0) Atomics.wait(ctl, 1, 0, 5); // until the worker is flipping

  const ctx = b.gcmNew(KEY);
  let sealed = 0;
  let refused = 0;
  const wrong: string[] = [];
  const end = performance.now() + 2000;
  try {
    while (performance.now() < end) {
      dst.fill(FILL);
      let n: number | null = null;
      try {
        n = b.gcmSealBatch(ctx, IV, COUNTER, src, aad, dst, layout);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== ErrorCodes.CRYPTO_LENGTH) wrong.push(`threw ${String(code)}: ${(e as Error).message}`);
      }
      if (n === null) {
        refused++;
        if (!dst.every((x) => x === FILL)) wrong.push('a refused call wrote into dst');
      } else {
        sealed++;
        if (n !== N) wrong.push(`returned ${n}`);
        // dstOff values GOOD and BAD differ in one byte only: a torn read is one of the two.
        if (!Buffer.from(dst).equals(wantDst)) wrong.push('an accepted call wrote something other than the 8 records at their checked offsets');
      }
      if (!guardsIntact()) {
        wrong.push('a guard region around dst changed');
        all.fill(FILL);
      }
      if (wrong.length > 5) break;
    }
  } finally {
    Atomics.store(ctl, 0, 1);
    b.gcmFree(ctx);
  }
  const [flips] = (await flipsP) as [number];
  await exited;
  t.same(wrong, [], `every call refused (CRYPTO_LENGTH, nothing written) or sealed inside dst: ${sealed} sealed, ${refused} refused`);
  t.ok(flips > 1000, `the worker rewrote the layout ${flips} times`);
  t.ok(sealed > 0 && refused > 0, 'both outcomes happened (the race was real)');
});

withNative(t, 'review (d): batches are capped at 2^20 records, checked before anything is written', (t, b) => {
  const ctx = b.gcmNew(KEY);
  const over = new Uint32Array((2 ** 20 + 1) * 5); // records of length 0 at offset 0
  const dst = Buffer.alloc(64, FILL);
  const status = new Uint8Array(2 ** 20 + 1).fill(7);
  t.equal(codeOf(() => b.gcmSealBatch(ctx, IV, 0, Buffer.alloc(0), Buffer.alloc(0), dst, over)), ErrorCodes.CRYPTO_LENGTH, 'seal: 2^20 + 1 records refused');
  let msg = '';
  try {
    b.gcmSealBatch(ctx, IV, 0, Buffer.alloc(0), Buffer.alloc(0), dst, over);
  } catch (e) {
    msg = (e as Error).message;
  }
  t.match(msg, /2\^20/, 'the message names the cap');
  t.equal(codeOf(() => b.gcmOpenBatch(ctx, IV, 0, Buffer.alloc(16), Buffer.alloc(0), dst, over, status)), ErrorCodes.CRYPTO_LENGTH, 'open: 2^20 + 1 records refused');
  t.ok(dst.every((x) => x === FILL) && status.every((x) => x === 7), 'nothing written, no status set');
  const huge = new Uint32Array(2 ** 22 * 5);
  t.equal(codeOf(() => b.gcmSealBatch(ctx, IV, 0, Buffer.alloc(0), Buffer.alloc(0), dst, huge)), ErrorCodes.CRYPTO_LENGTH, 'seal: 2^22 records refused');
  // The cap itself is accepted: 2^20 empty records, each a 16-byte tag at offset 0.
  const at = new Uint32Array(2 ** 20 * 5);
  t.equal(b.gcmSealBatch(ctx, IV, 0, Buffer.alloc(0), Buffer.alloc(0), dst, at), 2 ** 20, 'exactly 2^20 records: sealed');
  t.ok(dst.subarray(0, 16).equals(sealRefAt(2 ** 20 - 1)), 'the last one under nonce(iv, 2^20 - 1)');
  t.ok(dst.subarray(16).every((x) => x === FILL), 'nothing past the tag');
  b.gcmFree(ctx);
});

/** The tag of an empty record with no AAD under nonce(IV, counter). */
function sealRefAt(counter: number): Buffer {
  return ref.seal(nonce(IV, counter), Buffer.alloc(0), Buffer.alloc(0));
}
