// Issue 3: the C addon (native/src/gcm.c) as a raw binding: argument shapes, bounds checked
// before anything is written, aliasing, counters, failed opens leaving no plaintext (BC-15),
// use after free, foreign contexts; and the NativeGcm Aead over it. Skips with the loader's
// reason when the addon is not built (fails instead under QKDGW_REQUIRE_NATIVE=1).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isBatchAead, isCounterAead } from '../../../src/crypto/aead.js';
import { packLayout } from '../../../src/crypto/batch.js';
import { nativeGcmFactory } from '../../../src/crypto/backends/native-gcm.js';
import type { NativeBinding } from '../../../src/crypto/native/binding.js';
import { nodeGcm } from '../../../src/crypto/backends/node-gcm.js';
import { nonce } from '../../../src/crypto/nonce.js';
import { ErrorCodes } from '../../../src/errors.js';
import { withNative } from '../../vectors/aead-backends.js';
import { codeOf } from '../../vectors/load.js';

const KEY = Buffer.alloc(32, 0x42);
const IV = Buffer.from('000102030405060708090a0b', 'hex');
const FILL = 0xaa;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** The binding with its types erased, to pass what TypeScript would refuse. */
type Loose = Record<keyof NativeBinding, (...args: unknown[]) => unknown>;
const loose = (b: NativeBinding): Loose => b as unknown as Loose;

/** The thrown error's `message` (or undefined). */
function messageOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

const filled = (n: number): Buffer => Buffer.alloc(n, FILL);
const untouched = (b: Uint8Array, v = FILL): boolean => b.every((x) => x === v);

withNative(t, 'gcmNew: key must be a 32-byte Uint8Array', (t, b) => {
  const raw = loose(b);
  for (const n of [0, 16, 24, 31, 33, 64]) t.equal(codeOf(() => b.gcmNew(Buffer.alloc(n))), ErrorCodes.CRYPTO_LENGTH, `${n}-byte key refused`);
  for (const [what, v] of [
    ['string', 'k'.repeat(32)],
    ['number', 32],
    ['null', null],
    ['plain array', Array.from({ length: 32 }, () => 0)],
    ['ArrayBuffer', new ArrayBuffer(32)],
    ['Uint16Array(16)', new Uint16Array(16)],
    ['Uint8ClampedArray(32)', new Uint8ClampedArray(32)],
    ['DataView', new DataView(new ArrayBuffer(32))],
  ] as const) {
    t.equal(codeOf(() => raw.gcmNew(v)), ErrorCodes.CRYPTO_LENGTH, `${what} key refused`);
  }
  t.equal(codeOf(() => raw.gcmNew()), ErrorCodes.CRYPTO_LENGTH, 'no argument refused');
  t.equal(codeOf(() => raw.gcmNew(KEY, KEY)), ErrorCodes.CRYPTO_LENGTH, 'two arguments refused');
  const ctx = b.gcmNew(new Uint8Array(KEY));
  t.ok(ctx, 'a plain Uint8Array key is accepted');
  b.gcmFree(ctx);
});

withNative(t, 'gcmSeal/gcmOpen: nonce, argument types and output size', (t, b) => {
  const raw = loose(b);
  const ctx = b.gcmNew(KEY);
  const pt = Buffer.from('record body');
  for (const n of [0, 8, 11, 13, 16, 24]) {
    const out = filled(64);
    t.equal(codeOf(() => b.gcmSeal(ctx, Buffer.alloc(n), pt, Buffer.alloc(0), out)), ErrorCodes.CRYPTO_LENGTH, `seal with a ${n}-byte nonce refused`);
    t.equal(codeOf(() => b.gcmOpen(ctx, Buffer.alloc(n), Buffer.alloc(32), Buffer.alloc(0), out)), ErrorCodes.CRYPTO_LENGTH, `open with a ${n}-byte nonce refused`);
    t.ok(untouched(out), `nothing written for the ${n}-byte nonce`);
  }
  const good = [ctx, IV, pt, Buffer.alloc(0), filled(64)] as const;
  for (let i = 1; i < 5; i++) {
    for (const bad of ['x', 7, null, undefined, new Uint16Array(8), [1, 2, 3]]) {
      const args: unknown[] = [...good];
      args[i] = bad;
      t.equal(codeOf(() => raw.gcmSeal(...args)), ErrorCodes.CRYPTO_LENGTH, `seal argument ${i} = ${Object.prototype.toString.call(bad)} refused`);
      t.equal(codeOf(() => raw.gcmOpen(...args)), ErrorCodes.CRYPTO_LENGTH, `open argument ${i} = ${Object.prototype.toString.call(bad)} refused`);
    }
  }
  t.equal(codeOf(() => raw.gcmSeal(ctx, IV, pt, Buffer.alloc(0))), ErrorCodes.CRYPTO_LENGTH, 'seal with 4 arguments refused');
  t.equal(codeOf(() => raw.gcmOpen(ctx, IV, pt, Buffer.alloc(0))), ErrorCodes.CRYPTO_LENGTH, 'open with 4 arguments refused');
  // Output one byte too small: refused, nothing written.
  const small = filled(pt.length + 15);
  t.equal(codeOf(() => b.gcmSeal(ctx, IV, pt, Buffer.alloc(0), small)), ErrorCodes.CRYPTO_LENGTH, 'seal into pt.length + 15 bytes refused');
  t.ok(untouched(small), 'nothing written to the short seal output');
  const exact = filled(pt.length + 16);
  t.equal(b.gcmSeal(ctx, IV, pt, Buffer.alloc(0), exact), pt.length + 16, 'seal returns pt.length + 16');
  t.ok(exact.equals(nodeGcm(KEY).seal(IV, pt, Buffer.alloc(0))), 'and equals node:crypto');
  const back = filled(pt.length - 1);
  t.equal(codeOf(() => b.gcmOpen(ctx, IV, exact, Buffer.alloc(0), back)), ErrorCodes.CRYPTO_LENGTH, 'open into a too small output refused');
  t.ok(untouched(back), 'nothing written to the short open output');
  const pt2 = filled(pt.length + 4);
  t.equal(b.gcmOpen(ctx, IV, exact, Buffer.alloc(0), pt2), pt.length, 'open returns the plaintext length');
  t.ok(pt2.subarray(0, pt.length).equals(pt) && untouched(pt2.subarray(pt.length)), 'plaintext written, the rest untouched');
  b.gcmFree(ctx);
});

withNative(t, 'gcmOpen: a failed tag returns -1 with the output region zeroed (BC-15); under 16 bytes is -1', (t, b) => {
  const ctx = b.gcmNew(KEY);
  const pt = Buffer.from('attack at dawn, bring snacks');
  const aad = Buffer.from('hdr');
  const sealed = Buffer.alloc(pt.length + 16);
  b.gcmSeal(ctx, IV, pt, aad, sealed);
  const spoil = (at: number): Buffer => {
    const s = Buffer.from(sealed);
    s[at]! ^= 0x01;
    return s;
  };
  for (const [what, s, a] of [
    ['flipped tag bit', spoil(sealed.length - 1), aad],
    ['flipped first tag byte', spoil(pt.length), aad],
    ['flipped ciphertext bit', spoil(3), aad],
    ['other AAD', sealed, Buffer.from('hdR')],
    ['no AAD', sealed, Buffer.alloc(0)],
  ] as const) {
    const out = filled(pt.length + 8);
    t.equal(b.gcmOpen(ctx, IV, s, a, out), -1, `${what}: -1`);
    t.ok(untouched(out.subarray(0, pt.length), 0), `${what}: plaintext region zeroed`);
    t.ok(untouched(out.subarray(pt.length)), `${what}: bytes past the region untouched`);
  }
  const other = Buffer.from(IV);
  other[11]! ^= 1;
  const out = filled(pt.length);
  t.equal(b.gcmOpen(ctx, other, sealed, aad, out), -1, 'other nonce: -1');
  t.ok(untouched(out, 0), 'other nonce: region zeroed');
  for (const n of [0, 1, 15]) {
    const o = filled(8);
    t.equal(b.gcmOpen(ctx, IV, sealed.subarray(0, n), aad, o), -1, `${n}-byte sealed input: -1`);
    t.ok(untouched(o), `${n}-byte sealed input: nothing written`);
  }
  // A 16-byte record is an empty plaintext: only a genuine tag opens it.
  const empty = Buffer.alloc(16);
  b.gcmSeal(ctx, IV, Buffer.alloc(0), aad, empty);
  t.equal(b.gcmOpen(ctx, IV, empty, aad, Buffer.alloc(0)), 0, 'empty record opens to 0 bytes');
  empty[0]! ^= 1;
  t.equal(b.gcmOpen(ctx, IV, empty, aad, Buffer.alloc(0)), -1, 'empty record with a bad tag: -1');
  b.gcmFree(ctx);
});

withNative(t, 'single-record aliasing: out may start at the input, never partly overlap it', (t, b) => {
  const ctx = b.gcmNew(KEY);
  const pt = Buffer.from('0123456789abcdef0123456789');
  const want = nodeGcm(KEY).seal(IV, pt, Buffer.alloc(0));
  const buf = Buffer.alloc(pt.length + 16 + 4, FILL);
  pt.copy(buf);
  t.equal(b.gcmSeal(ctx, IV, buf.subarray(0, pt.length), Buffer.alloc(0), buf), pt.length + 16, 'in-place seal');
  t.ok(buf.subarray(0, pt.length + 16).equals(want), 'in-place seal equals node:crypto');
  t.equal(b.gcmOpen(ctx, IV, buf.subarray(0, pt.length + 16), Buffer.alloc(0), buf), pt.length, 'in-place open');
  t.ok(buf.subarray(0, pt.length).equals(pt), 'in-place open gives the plaintext');
  for (const shift of [1, 8, pt.length - 1]) {
    const a = Buffer.alloc(pt.length * 2 + 64, FILL);
    pt.copy(a, 16);
    const before = Buffer.from(a);
    t.equal(codeOf(() => b.gcmSeal(ctx, IV, a.subarray(16, 16 + pt.length), Buffer.alloc(0), a.subarray(16 + shift))), ErrorCodes.CRYPTO_LENGTH, `seal: out starting ${shift} bytes into the plaintext refused`);
    t.equal(codeOf(() => b.gcmSeal(ctx, IV, a.subarray(16, 16 + pt.length), Buffer.alloc(0), a.subarray(16 - Math.min(shift, 16)))), ErrorCodes.CRYPTO_LENGTH, `seal: out starting before the plaintext and running into it refused`);
    t.ok(a.equals(before), `seal with overlap ${shift}: nothing written`);
  }
  const a = Buffer.alloc(want.length + 8, FILL);
  want.copy(a, 4);
  const before = Buffer.from(a);
  t.equal(codeOf(() => b.gcmOpen(ctx, IV, a.subarray(4, 4 + want.length), Buffer.alloc(0), a.subarray(5))), ErrorCodes.CRYPTO_LENGTH, 'open: out starting 1 byte into the input refused');
  t.equal(codeOf(() => b.gcmOpen(ctx, IV, a.subarray(4, 4 + want.length), Buffer.alloc(0), a.subarray(0))), ErrorCodes.CRYPTO_LENGTH, 'open: out starting before the input and running into it refused');
  t.ok(a.equals(before), 'open with overlap: nothing written');
  b.gcmFree(ctx);
});

withNative(t, 'gcmSealAt/gcmOpenAt: one record under nonce iv XOR counter (protocol.md s5)', (t, b) => {
  const raw = loose(b);
  const ctx = b.gcmNew(KEY);
  const ref = nodeGcm(KEY);
  const pt = Buffer.from('counter-addressed record');
  const aad = Buffer.from('hdr');
  for (const c of [0, 1, 255, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, MAX_SAFE - 1, MAX_SAFE]) {
    const out = filled(pt.length + 16);
    t.equal(b.gcmSealAt(ctx, IV, c, pt, aad, out), pt.length + 16, `counter ${c}: seal returns pt.length + 16`);
    t.ok(out.equals(ref.seal(nonce(IV, c), pt, aad)), `counter ${c}: equals node:crypto under nonce(iv, ${c})`);
    const back = filled(pt.length);
    t.equal(b.gcmOpenAt(ctx, IV, c, out, aad, back), pt.length, `counter ${c}: opens`);
    t.ok(back.equals(pt), `counter ${c}: plaintext back`);
    const wrong = filled(pt.length);
    t.equal(b.gcmOpenAt(ctx, IV, c === 0 ? 1 : c - 1, out, aad, wrong), -1, `counter ${c}: a neighbouring counter does not open it`);
    t.ok(untouched(wrong, 0), `counter ${c}: and leaves the region zeroed`);
  }
  for (const c of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', 1n, null]) {
    const out = filled(pt.length + 16);
    t.equal(codeOf(() => raw.gcmSealAt(ctx, IV, c, pt, aad, out)), ErrorCodes.CRYPTO_LENGTH, `seal at counter ${String(c)} refused`);
    t.equal(codeOf(() => raw.gcmOpenAt(ctx, IV, c, Buffer.alloc(32), aad, out)), ErrorCodes.CRYPTO_LENGTH, `open at counter ${String(c)} refused`);
    t.ok(untouched(out), `counter ${String(c)}: nothing written`);
  }
  for (const n of [0, 11, 13, 24]) {
    const out = filled(pt.length + 16);
    t.equal(codeOf(() => b.gcmSealAt(ctx, Buffer.alloc(n), 0, pt, aad, out)), ErrorCodes.CRYPTO_LENGTH, `seal with a ${n}-byte IV refused`);
    t.equal(codeOf(() => b.gcmOpenAt(ctx, Buffer.alloc(n), 0, Buffer.alloc(32), aad, out)), ErrorCodes.CRYPTO_LENGTH, `open with a ${n}-byte IV refused`);
    t.ok(untouched(out), `${n}-byte IV: nothing written`);
  }
  const small = filled(pt.length + 15);
  t.equal(codeOf(() => b.gcmSealAt(ctx, IV, 0, pt, aad, small)), ErrorCodes.CRYPTO_LENGTH, 'seal into pt.length + 15 bytes refused');
  t.ok(untouched(small), 'nothing written to the short output');
  for (const n of [0, 15]) t.equal(b.gcmOpenAt(ctx, IV, 0, Buffer.alloc(n), aad, filled(4)), -1, `${n}-byte sealed input: -1`);
  const buf = Buffer.alloc(pt.length + 40, FILL);
  pt.copy(buf, 8);
  t.equal(codeOf(() => b.gcmSealAt(ctx, IV, 0, buf.subarray(8, 8 + pt.length), aad, buf.subarray(9))), ErrorCodes.CRYPTO_LENGTH, 'partial overlap refused');
  t.equal(codeOf(() => raw.gcmSealAt(ctx, IV, 0, pt, aad)), ErrorCodes.CRYPTO_LENGTH, 'seal with 5 arguments refused');
  t.equal(codeOf(() => raw.gcmOpenAt(ctx, IV, 0, pt, aad)), ErrorCodes.CRYPTO_LENGTH, 'open with 5 arguments refused');
  b.gcmFree(ctx);
  t.equal(codeOf(() => b.gcmSealAt(ctx, IV, 0, pt, aad, filled(64))), ErrorCodes.INTERNAL, 'seal after gcmFree: QKDGW_E_INTERNAL');
  t.equal(codeOf(() => b.gcmOpenAt(ctx, IV, 0, Buffer.alloc(32), aad, filled(64))), ErrorCodes.INTERNAL, 'open after gcmFree: QKDGW_E_INTERNAL');
});

/** A 3-record batch fixture: plaintexts in `src`, sealed layout and output sizes. */
function fixture(): { src: Buffer; aad: Buffer; recs: Array<{ srcOff: number; len: number; aadOff: number; aadLen: number; dstOff: number }>; dstLen: number } {
  const src = Buffer.from('first-record|second|third record, longer than the others');
  const aad = Buffer.from('aad-bytes-0123456789');
  const recs = [
    { srcOff: 0, len: 12, aadOff: 0, aadLen: 9, dstOff: 0 },
    { srcOff: 13, len: 6, aadOff: 3, aadLen: 0, dstOff: 30 },
    { srcOff: 20, len: src.length - 20, aadOff: 10, aadLen: 10, dstOff: 60 },
  ];
  return { src, aad, recs, dstLen: 60 + src.length - 20 + 16 };
}

withNative(t, 'gcmSealBatch/gcmOpenBatch: shapes, bounds and aliasing are checked before anything is written', (t, b) => {
  const raw = loose(b);
  const ctx = b.gcmNew(KEY);
  const { src, aad, recs, dstLen } = fixture();
  const layout = packLayout(recs);
  // A correct batch first, so the refusals below are about the arguments alone.
  const dst = filled(dstLen);
  t.equal(b.gcmSealBatch(ctx, IV, 5, src, aad, dst, layout), 3, 'three records sealed');
  const ref = nodeGcm(KEY);
  t.ok(recs.every((r, i) => dst.subarray(r.dstOff, r.dstOff + r.len + 16).equals(ref.seal(nonce(IV, 5 + i), src.subarray(r.srcOff, r.srcOff + r.len), aad.subarray(r.aadOff, r.aadOff + r.aadLen)))), 'records equal single seals under nonce(iv, 5 + i)');
  const openLayout = packLayout(recs.map((r) => ({ srcOff: r.dstOff, len: r.len + 16, aadOff: r.aadOff, aadLen: r.aadLen, dstOff: r.srcOff })));
  const back = filled(src.length);
  const status = new Uint8Array(4).fill(7);
  t.equal(b.gcmOpenBatch(ctx, IV, 5, dst, aad, back, openLayout, status), 0, 'opens with 0 failures');
  t.same([...status], [1, 1, 1, 7], 'status 1 per record, the spare byte untouched');
  t.equal(b.gcmSealBatch(ctx, IV, MAX_SAFE, src, aad, filled(0), new Uint32Array(0)), 0, 'an empty layout seals 0 records, even at counter 2^53 - 1');

  /** Seal and open with one argument replaced; both must throw CRYPTO_LENGTH with nothing written. */
  const refused = (what: string, patch: (sealArgs: unknown[], openArgs: unknown[]) => void, openOnly = false): void => {
    const d1 = filled(dstLen);
    const d2 = filled(src.length);
    const st = new Uint8Array(3).fill(7);
    const sa: unknown[] = [ctx, IV, 0, src, aad, d1, layout];
    const oa: unknown[] = [ctx, IV, 0, dst, aad, d2, openLayout, st];
    patch(sa, oa);
    if (!openOnly) t.equal(codeOf(() => raw.gcmSealBatch(...sa)), ErrorCodes.CRYPTO_LENGTH, `seal: ${what} refused`);
    t.equal(codeOf(() => raw.gcmOpenBatch(...oa)), ErrorCodes.CRYPTO_LENGTH, `open: ${what} refused`);
    t.ok(untouched(d1) && untouched(d2) && untouched(st, 7), `${what}: nothing written`);
  };

  for (const n of [0, 11, 13, 24]) refused(`${n}-byte IV`, (s, o) => (s[1] = o[1] = Buffer.alloc(n)));
  for (const [i, name] of [[1, 'iv'], [3, 'src'], [4, 'aad'], [5, 'dst']] as const) {
    for (const bad of ['x', null, new Uint16Array(12), [0, 0]]) refused(`${name} = ${Object.prototype.toString.call(bad)}`, (s, o) => (s[i] = o[i] = bad));
  }
  for (const bad of [Array.from(layout), new Int32Array(layout), new Uint8Array(15), null]) refused(`layout = ${Object.prototype.toString.call(bad)}`, (s, o) => (s[6] = o[6] = bad));
  for (const words of [1, 4, 6, 9, 14, 16]) {
    const l = new Uint32Array(words);
    l.set(layout.subarray(0, Math.min(words, 15)));
    refused(`layout of ${words} words (not a multiple of 5)`, (s, o) => (s[6] = o[6] = l));
  }
  refused('status of type Array', (_s, o) => (o[7] = [0, 0, 0]), true);
  refused('status shorter than the record count', (_s, o) => (o[7] = new Uint8Array(2)), true);
  t.equal(codeOf(() => raw.gcmSealBatch(ctx, IV, 0, src, aad, dst)), ErrorCodes.CRYPTO_LENGTH, 'seal batch with 6 arguments refused');
  t.equal(codeOf(() => raw.gcmOpenBatch(ctx, IV, 0, dst, aad, back, openLayout)), ErrorCodes.CRYPTO_LENGTH, 'open batch with 7 arguments refused');

  // Records outside src, aad or dst. The bad record is the LAST one: the two good ones
  // before it must not have been written either.
  const lastWith = (base: Uint32Array, word: number, value: number): Uint32Array => {
    const l = new Uint32Array(base);
    l[10 + word] = value;
    return l;
  };
  const bounds: Array<[string, number, (l: Uint32Array, srcLen: number, dstLen: number) => number]> = [
    ['srcOff past src', 0, (_l, s) => s],
    ['len past src', 1, (l, s) => s - l[10]! + 1],
    ['srcOff 2^32 - 1', 0, () => 0xffffffff],
    ['len 2^32 - 1', 1, () => 0xffffffff],
    ['aadOff past aad', 2, () => aad.length - 9],
    ['aadLen past aad', 3, () => aad.length],
    ['aadOff 2^32 - 1', 2, () => 0xffffffff],
    ['dstOff past dst', 4, (_l, _s, d) => d],
    ['dstOff 2^32 - 1', 4, () => 0xffffffff],
    ['dstOff one byte too far', 4, (l, _s, d) => d - (l[11]! + 16) + 1],
  ];
  for (const [what, word, value] of bounds) {
    const d1 = filled(dstLen);
    const l = lastWith(layout, word, value(layout, src.length, dstLen));
    t.equal(codeOf(() => b.gcmSealBatch(ctx, IV, 0, src, aad, d1, l)), ErrorCodes.CRYPTO_LENGTH, `seal: record 3 with ${what} refused`);
    t.ok(untouched(d1), `seal: ${what}: records 1 and 2 not written either`);
  }
  const openBounds: Array<[string, number, number]> = [
    ['srcOff past the sealed input', 0, dst.length],
    ['len past the sealed input', 1, dst.length],
    ['dstOff past dst', 4, src.length],
    ['dstOff one byte too far', 4, src.length - recs[2]!.len + 1],
  ];
  for (const [what, word, value] of openBounds) {
    const d2 = filled(src.length);
    const st = new Uint8Array(3).fill(7);
    const l = lastWith(openLayout, word, value);
    t.equal(codeOf(() => b.gcmOpenBatch(ctx, IV, 5, dst, aad, d2, l, st)), ErrorCodes.CRYPTO_LENGTH, `open: record 3 with ${what} refused`);
    t.ok(untouched(d2) && untouched(st, 7), `open: ${what}: nothing written, no status set`);
  }

  // Partial overlap of a record's output with its input, in one buffer.
  const one = (srcOff: number, len: number, dstOff: number): Uint32Array => packLayout([{ srcOff, len, aadOff: 0, aadLen: 0, dstOff }]);
  for (const [what, l] of [
    ['dst 1 byte after src', one(8, 40, 9)],
    ['dst 1 byte before src', one(8, 40, 7)],
    ['dst ending inside src', one(30, 20, 0)],
  ] as const) {
    const buf = filled(128);
    t.equal(codeOf(() => b.gcmSealBatch(ctx, IV, 0, buf, aad, buf, l)), ErrorCodes.CRYPTO_LENGTH, `seal: ${what} refused`);
    t.ok(untouched(buf), `seal: ${what}: nothing written`);
  }
  const bufO = filled(128);
  const st = new Uint8Array(1).fill(7);
  t.equal(codeOf(() => b.gcmOpenBatch(ctx, IV, 0, bufO, aad, bufO, one(8, 40, 9), st)), ErrorCodes.CRYPTO_LENGTH, 'open: dst 1 byte after src refused');
  t.ok(untouched(bufO) && untouched(st, 7), 'open with partial overlap: nothing written');
  // Disjoint regions of one buffer are fine.
  const shared = filled(128);
  t.equal(b.gcmSealBatch(ctx, IV, 0, shared, aad, shared, one(0, 20, 40)), 1, 'disjoint regions of one buffer: sealed');
  b.gcmFree(ctx);
});

withNative(t, 'batch counters: safe integers >= 0 only, and counter + n - 1 <= 2^53 - 1', (t, b) => {
  const raw = loose(b);
  const ctx = b.gcmNew(KEY);
  const { src, aad, recs, dstLen } = fixture();
  const layout = packLayout(recs);
  for (const c of [-1, -0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, 2 ** 64, MAX_SAFE - 1, MAX_SAFE, '1', 1n, null, undefined, {}]) {
    const d = filled(dstLen);
    t.equal(codeOf(() => raw.gcmSealBatch(ctx, IV, c, src, aad, d, layout)), ErrorCodes.CRYPTO_LENGTH, `counter ${String(c)} with 3 records refused`);
    t.ok(untouched(d), `counter ${String(c)}: nothing written`);
  }
  const d = filled(dstLen);
  t.equal(b.gcmSealBatch(ctx, IV, MAX_SAFE - 2, src, aad, d, layout), 3, 'counter 2^53 - 3 with 3 records (last = 2^53 - 1) accepted');
  const ref = nodeGcm(KEY);
  t.ok(d.subarray(recs[2]!.dstOff).equals(ref.seal(nonce(IV, MAX_SAFE), src.subarray(recs[2]!.srcOff), aad.subarray(10, 20))), 'the last record uses nonce(iv, 2^53 - 1)');
  t.equal(codeOf(() => b.gcmOpenBatch(ctx, IV, MAX_SAFE - 1, d, aad, filled(src.length), packLayout(recs.map((r) => ({ ...r, srcOff: r.dstOff, len: r.len + 16, dstOff: r.srcOff }))), new Uint8Array(3))), ErrorCodes.CRYPTO_LENGTH, 'open: counter 2^53 - 2 with 3 records refused');
  t.equal(b.gcmSealBatch(ctx, IV, -0, src, aad, filled(dstLen), layout), 3, 'counter -0 is 0');
  b.gcmFree(ctx);
});

withNative(t, 'contexts: use after gcmFree, double free, foreign objects', (t, b) => {
  const raw = loose(b);
  const ctx = b.gcmNew(KEY);
  b.gcmFree(ctx);
  const out = filled(64);
  const { src, aad, recs, dstLen } = fixture();
  const layout = packLayout(recs);
  const calls: Array<[string, () => unknown]> = [
    ['gcmSeal', () => b.gcmSeal(ctx, IV, Buffer.alloc(4), Buffer.alloc(0), out)],
    ['gcmOpen', () => b.gcmOpen(ctx, IV, Buffer.alloc(20), Buffer.alloc(0), out)],
    ['gcmSealBatch', () => b.gcmSealBatch(ctx, IV, 0, src, aad, filled(dstLen), layout)],
    ['gcmOpenBatch', () => b.gcmOpenBatch(ctx, IV, 0, filled(dstLen), aad, out, layout, new Uint8Array(3))],
  ];
  for (const [name, fn] of calls) {
    t.equal(codeOf(fn), ErrorCodes.INTERNAL, `${name} after gcmFree: QKDGW_E_INTERNAL`);
    t.match(messageOf(fn), /used after destroy/, `${name} after gcmFree: says "used after destroy"`);
  }
  t.ok(untouched(out), 'nothing written after free');
  t.doesNotThrow(() => b.gcmFree(ctx), 'gcmFree twice is fine');
  t.doesNotThrow(() => b.gcmFree(ctx), 'and three times');

  const live = b.gcmNew(KEY);
  const foreign: Array<[string, unknown]> = [
    ['plain object', {}],
    ['object shaped like a context', { __brand: 'qkdgw-native-gcm' }],
    ['null', null],
    ['undefined', undefined],
    ['number', 1],
    ['Buffer', Buffer.alloc(32)],
    ['function', () => live],
  ];
  const extern = foreignExternals(t);
  if (extern) foreign.push(['foreign untagged N-API external', extern.plain()], ['foreign N-API external with another type tag', extern.tagged()]);
  for (const [what, v] of foreign) {
    t.ok(codeOf(() => raw.gcmSeal(v, IV, Buffer.alloc(4), Buffer.alloc(0), out))?.startsWith('QKDGW_E_'), `gcmSeal(${what}) throws a coded error`);
    t.equal(codeOf(() => raw.gcmOpen(v, IV, Buffer.alloc(20), Buffer.alloc(0), out)), ErrorCodes.INTERNAL, `gcmOpen(${what}) throws QKDGW_E_INTERNAL`);
    t.ok(codeOf(() => raw.gcmSealBatch(v, IV, 0, src, aad, filled(dstLen), layout)), `gcmSealBatch(${what}) throws`);
    t.ok(codeOf(() => raw.gcmFree(v)), `gcmFree(${what}) throws`);
  }
  t.ok(untouched(out), 'nothing written through a foreign context');
  t.equal(b.gcmSeal(live, IV, Buffer.alloc(4), Buffer.alloc(0), out), 20, 'a live context still works after all that');
  b.gcmFree(live);
});

/**
 * Builds a tiny addon in t.testdir() that hands out N-API externals that are not ours
 * (one untagged, one with another type tag). Returns null, with a comment, when no C
 * compiler or Node headers are at hand.
 */
function foreignExternals(t: Test): { plain(): unknown; tagged(): unknown } | null {
  const include = join(dirname(process.execPath), '..', 'include', 'node');
  if (!existsSync(join(include, 'node_api.h'))) {
    t.comment(`foreign-external check not run: no Node headers at ${include}`);
    return null;
  }
  const dir = t.testdir({});
  const c = join(dir, 'foreign.c');
  writeFileSync(
    c,
    `#define NAPI_VERSION 8
#include <node_api.h>
static int thing;
static const napi_type_tag OTHER = {1, 2};
static napi_value plain(napi_env env, napi_callback_info info) {
  napi_value v; (void)info;
  napi_create_external(env, &thing, NULL, NULL, &v);
  return v;
}
static napi_value tagged(napi_env env, napi_callback_info info) {
  napi_value v = plain(env, info);
  napi_type_tag_object(env, v, &OTHER);
  return v;
}
NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "plain", NAPI_AUTO_LENGTH, plain, NULL, &f);
  napi_set_named_property(env, exports, "plain", f);
  napi_create_function(env, "tagged", NAPI_AUTO_LENGTH, tagged, NULL, &f);
  napi_set_named_property(env, exports, "tagged", f);
  return exports;
}
`,
  );
  const so = join(dir, 'foreign.node');
  const mac = process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : [];
  const r = spawnSync(process.env.CC || 'cc', ['-shared', '-fPIC', ...mac, `-I${include}`, '-o', so, c], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) {
    t.comment(`foreign-external check not run: cc failed (${r.error?.message ?? r.stderr.trim().split('\n')[0]})`);
    return null;
  }
  return createRequire(import.meta.url)(so) as { plain(): unknown; tagged(): unknown };
}

withNative(t, 'NativeGcm Aead over the binding', (t, b) => {
  const f = nativeGcmFactory(b);
  for (const n of [0, 16, 31, 33]) t.equal(codeOf(() => f(Buffer.alloc(n))), ErrorCodes.CRYPTO_LENGTH, `${n}-byte key refused`);
  const a = f(KEY);
  t.equal(a.name, 'native-aes-256-gcm');
  t.equal(a.nonceLength, 12);
  const pt = Buffer.from('exact fit');
  const exact = Buffer.alloc(pt.length + 16);
  t.equal(a.seal(IV, pt, Buffer.alloc(0), exact), exact, 'an exact-size out is returned as the same Buffer object');
  const back = Buffer.alloc(pt.length);
  t.equal(a.open(IV, exact, Buffer.alloc(0), back), back, 'an exact-size open out is returned as the same Buffer object');
  t.ok(back.equals(pt));
  const big = filled(64);
  const view = a.seal(IV, pt, Buffer.alloc(0), big);
  t.ok(view.buffer === big.buffer && view.byteOffset === big.byteOffset && view.length === pt.length + 16, 'a larger out gives a view of its start');
  t.ok(untouched(big.subarray(pt.length + 16)), 'bytes past the record untouched');
  t.equal(codeOf(() => a.seal(IV, pt, Buffer.alloc(0), Buffer.alloc(pt.length + 15))), ErrorCodes.CRYPTO_LENGTH, 'a short out is refused');
  t.equal(codeOf(() => a.seal(Buffer.alloc(24), pt, Buffer.alloc(0))), ErrorCodes.CRYPTO_LENGTH, 'a 24-byte nonce is refused');
  t.equal(a.open(IV, Buffer.alloc(15), Buffer.alloc(0)), null, 'a 15-byte input opens to null');
  const bad = Buffer.from(exact);
  bad[bad.length - 1]! ^= 1;
  const o = filled(pt.length);
  t.equal(a.open(IV, bad, Buffer.alloc(0), o), null, 'a flipped tag opens to null');
  t.ok(untouched(o, 0), 'and leaves no plaintext in out');
  a.destroy();
  t.equal(codeOf(() => a.seal(IV, pt, Buffer.alloc(0))), ErrorCodes.INTERNAL, 'seal after destroy: QKDGW_E_INTERNAL');
  t.equal(codeOf(() => a.open(IV, exact, Buffer.alloc(0))), ErrorCodes.INTERNAL, 'open after destroy: QKDGW_E_INTERNAL');
  // nativeGcmFactory's type is an overload whose first signature returns plain Aead, so
  // the BatchAead side is reached through the isBatchAead guard.
  const live = f(KEY);
  const gone = f(KEY);
  if (!isBatchAead(live) || !isBatchAead(gone)) {
    t.fail('NativeGcm is not a BatchAead');
    return;
  }
  t.equal(live.sealBatch(IV, 0, pt, Buffer.alloc(0), Buffer.alloc(0), new Uint32Array(0)), 0, 'an empty batch on a live one is fine');
  live.destroy();
  gone.destroy();
  t.equal(codeOf(() => gone.sealBatch(IV, 0, pt, Buffer.alloc(0), Buffer.alloc(0), new Uint32Array(0))), ErrorCodes.INTERNAL, 'sealBatch after destroy: QKDGW_E_INTERNAL');
  t.equal(codeOf(() => gone.openBatch(IV, 0, pt, Buffer.alloc(0), Buffer.alloc(0), new Uint32Array(0), new Uint8Array(0))), ErrorCodes.INTERNAL, 'openBatch after destroy: QKDGW_E_INTERNAL');
  t.doesNotThrow(() => a.destroy(), 'destroy twice is fine');
});

withNative(t, 'NativeGcm sealAt/openAt (CounterAead) over the binding', (t, b) => {
  const a = nativeGcmFactory(b)(KEY);
  if (!isCounterAead(a)) {
    t.fail('NativeGcm is not a CounterAead');
    return;
  }
  const pt = Buffer.from('exact fit');
  const c = 2 ** 32 + 7;
  const exact = Buffer.alloc(pt.length + 16);
  t.equal(a.sealAt(IV, c, pt, Buffer.alloc(0), exact), exact, 'an exact-size out is returned as the same Buffer object');
  t.ok(exact.equals(nodeGcm(KEY).seal(nonce(IV, c), pt, Buffer.alloc(0))), 'equals node:crypto under nonce(iv, counter)');
  const back = Buffer.alloc(pt.length);
  t.equal(a.openAt(IV, c, exact, Buffer.alloc(0), back), back, 'an exact-size open out is returned as the same Buffer object');
  t.ok(back.equals(pt));
  t.equal(a.openAt(IV, c + 1, exact, Buffer.alloc(0)), null, 'another counter does not open it');
  t.equal(a.openAt(IV, c, Buffer.alloc(15), Buffer.alloc(0)), null, 'a 15-byte input opens to null');
  t.equal(codeOf(() => a.sealAt(IV, c, pt, Buffer.alloc(0), Buffer.alloc(pt.length + 15))), ErrorCodes.CRYPTO_LENGTH, 'a short out is refused');
  t.equal(codeOf(() => a.sealAt(Buffer.alloc(24), c, pt, Buffer.alloc(0))), ErrorCodes.CRYPTO_LENGTH, 'a 24-byte IV is refused');
  t.equal(codeOf(() => a.sealAt(IV, -1, pt, Buffer.alloc(0))), ErrorCodes.CRYPTO_LENGTH, 'a negative counter is refused');
  a.destroy();
  t.equal(codeOf(() => a.sealAt(IV, c, pt, Buffer.alloc(0))), ErrorCodes.INTERNAL, 'sealAt after destroy: QKDGW_E_INTERNAL');
  t.equal(codeOf(() => a.openAt(IV, c, exact, Buffer.alloc(0))), ErrorCodes.INTERNAL, 'openAt after destroy: QKDGW_E_INTERNAL');
});

// Why this bound is robust: the loop is synchronous, so process.memoryUsage().arrayBuffers can
// only grow by what the loop itself allocates (a GC can only shrink it). A per-record output
// allocation (Buffer.allocUnsafe(1040) x 100k = ~100 MB) could be hidden by a GC inside the
// loop, so this check is one-sided: the no-allocation guarantee proper is the same-object
// assertion above; this one catches per-record backing stores that outlive the loop.
withNative(t, 'no allocation per record: 100k exact-size seals on each path grow arrayBuffers by < 256 KiB', (t, b) => {
  const a = nativeGcmFactory(b)(KEY);
  const pt = Buffer.alloc(1024, 7);
  const aad = Buffer.alloc(20, 1);
  const out = Buffer.alloc(pt.length + 16);
  const n = Buffer.alloc(12);
  const ctx = b.gcmNew(KEY);
  a.seal(n, pt, aad, out); // warm up
  const before = process.memoryUsage().arrayBuffers;
  let same = 0;
  for (let i = 0; i < 100_000; i++) {
    n.writeUInt32BE(i, 8);
    if (a.seal(n, pt, aad, out) === out) same++;
    b.gcmSeal(ctx, n, pt, aad, out);
    b.gcmSealAt(ctx, IV, i, pt, aad, out);
  }
  const grew = process.memoryUsage().arrayBuffers - before;
  t.equal(same, 100_000, 'every seal returned the caller Buffer itself');
  t.ok(grew < 256 * 1024, `arrayBuffers grew by ${grew} bytes over 300k seals (Aead.seal, gcmSeal, gcmSealAt)`);
  b.gcmFree(ctx);
  a.destroy();
});
