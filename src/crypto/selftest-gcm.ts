/**
 * AES-256-GCM known-answer test run on each backend before it is used (architecture.md
 * habit 5). Checks a published vector, the protocol.md s3.5 carrier record, rejection of
 * a flipped bit and of a truncated tag (Node 20 accepts those unless told not to), that
 * a failed open leaves no plaintext in the caller's buffer, and batches = single records.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { isCounterAead, type AeadFactory } from './aead.js';
import { openBatch, packLayout, sealBatch } from './batch.js';
import { nonce } from './nonce.js';

const h = (s: string): Buffer => Buffer.from(s, 'hex');

interface GcmCheck {
  name: string;
  run(f: AeadFactory): boolean;
}

const CARRIER = {
  key: '30ec9ee4a921ce731c195676f746c47195a63f95966c5d017d1ac1e9d13d3a3a',
  aad: '0200000000000001000000000000000000000015',
  nonce: '3fbb21ed4aca6486b85e1aee',
  sealed: '06590e078e3ebe883d4e5cd5faa61f81992ee3590d',
};

function withAead<T>(f: AeadFactory, key: string, fn: (a: ReturnType<AeadFactory>) => T): T {
  const a = f(h(key));
  try {
    return fn(a);
  } finally {
    a.destroy();
  }
}

/** Deterministic test bytes (no randomness: a self-test must be reproducible). */
function bytes(label: string, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0, block = 0; i < len; block++) {
    const h = createHash('sha256').update(`${label}/${block}`).digest();
    i += h.copy(out, i);
  }
  return out;
}

/** node:crypto's AES-256-GCM, called directly: the reference for long records. */
function reference(key: Buffer, iv: Buffer, pt: Buffer, aad: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  c.setAAD(aad);
  return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
}

const CHECKS: GcmCheck[] = [
  {
    // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14 (256-bit key).
    name: 'GCM spec test case 14',
    run: (f) =>
      withAead(f, '00'.repeat(32), (a) => a.seal(h('00'.repeat(12)), h('00'.repeat(16)), Buffer.alloc(0)).toString('hex') === 'cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919'),
  },
  {
    name: 'protocol.md s3.5 carrier record',
    run: (f) =>
      withAead(f, CARRIER.key, (a) => {
        const out = Buffer.alloc(64, 0xee);
        const sealed = a.seal(h(CARRIER.nonce), Buffer.from('hello'), h(CARRIER.aad), out);
        return sealed.toString('hex') === CARRIER.sealed && sealed.buffer === out.buffer && a.open(h(CARRIER.nonce), sealed, h(CARRIER.aad))?.toString() === 'hello';
      }),
  },
  {
    name: 'rejects a flipped tag bit and a 15-byte tag, leaving no plaintext',
    run: (f) =>
      withAead(f, CARRIER.key, (a) => {
        const bad = h(CARRIER.sealed);
        bad[bad.length - 1]! ^= 1;
        const out = Buffer.alloc(5, 0xee);
        const flipped = a.open(h(CARRIER.nonce), bad, h(CARRIER.aad), out) === null && !out.includes(Buffer.from('hello'));
        const short = h(CARRIER.sealed).subarray(0, CARRIER.sealed.length / 2 - 1);
        return flipped && a.open(h(CARRIER.nonce), short, h(CARRIER.aad)) === null && a.open(h(CARRIER.nonce), Buffer.alloc(15), Buffer.alloc(0)) === null;
      }),
  },
  {
    name: 'batch of 3 equals single records (protocol.md s5 nonces)',
    run: (f) =>
      withAead(f, CARRIER.key, (a) => {
        const iv = h(CARRIER.nonce);
        const src = Buffer.from('hello, world. 0123456789');
        const aad = h(CARRIER.aad);
        const recs = [
          { srcOff: 0, len: 5, aadOff: 0, aadLen: aad.length, dstOff: 0 },
          { srcOff: 5, len: 0, aadOff: 0, aadLen: 0, dstOff: 21 },
          { srcOff: 5, len: 19, aadOff: 4, aadLen: 16, dstOff: 37 },
        ];
        const dst = Buffer.alloc(72);
        sealBatch(a, iv, 0, src, aad, dst, packLayout(recs));
        const single = recs.every((r, i) =>
          a.seal(nonce(iv, i), src.subarray(r.srcOff, r.srcOff + r.len), aad.subarray(r.aadOff, r.aadOff + r.aadLen)).equals(dst.subarray(r.dstOff, r.dstOff + r.len + 16)),
        );
        const sealedLayout = packLayout(recs.map((r) => ({ srcOff: r.dstOff, len: r.len + 16, aadOff: r.aadOff, aadLen: r.aadLen, dstOff: r.srcOff })));
        const back = Buffer.alloc(src.length);
        const status = new Uint8Array(3);
        dst[dst.length - 1]! ^= 1; // the third record's tag
        const failed = openBatch(a, iv, 0, dst, aad, back, sealedLayout, status);
        return dst.subarray(0, 21).toString('hex') === CARRIER.sealed && single && failed === 1 && status.join() === '1,1,0' && back.subarray(0, 5).toString() === 'hello' && back.subarray(5).every((b) => b === 0);
      }),
  },
  {
    // The data path's own calls: a backend that takes IV + counter (native sealAt/openAt)
    // must put the counter into the nonce exactly as protocol.md s5 says.
    name: 'sealAt/openAt equal seal/open under nonce(iv, counter), counters 0 .. 2^53-1',
    run: (f) =>
      withAead(f, CARRIER.key, (a) => {
        if (!isCounterAead(a)) return true;
        const iv = h(CARRIER.nonce);
        const pt = bytes('at', 100);
        const aad = h(CARRIER.aad);
        return [0, 1, 2, 255, 256, 2 ** 32 - 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER].every((c) => {
          const want = a.seal(nonce(iv, c), pt, aad);
          const got = a.sealAt(iv, c, pt, aad);
          const back = a.openAt(iv, c, got, aad);
          const wrongCounter = a.openAt(iv, c === 0 ? 1 : c - 1, got, aad);
          return got.equals(want) && back !== null && back.equals(pt) && wrongCounter === null;
        });
      }),
  },
  {
    // Bulk code paths (many blocks, AVX/VAES loops) with node:crypto as the reference.
    name: 'records of 1,400 B, 8 KiB and 64 KiB equal node:crypto and open back',
    run: (f) => {
      const key = bytes('key', 32);
      return withAead(f, key.toString('hex'), (a) =>
        [1400, 8192, 65536].every((len) => {
          const iv = bytes(`iv${len}`, 12);
          const pt = bytes(`pt${len}`, len);
          const aad = bytes(`aad${len}`, 20);
          const sealed = isCounterAead(a) ? a.sealAt(iv, 0, pt, aad) : a.seal(iv, pt, aad);
          const back = isCounterAead(a) ? a.openAt(iv, 0, sealed, aad) : a.open(iv, sealed, aad);
          sealed[len >> 1]! ^= 0x80;
          const forged = isCounterAead(a) ? a.openAt(iv, 0, sealed, aad) : a.open(iv, sealed, aad);
          sealed[len >> 1]! ^= 0x80;
          return sealed.equals(reference(key, iv, pt, aad)) && back !== null && back.equals(pt) && forged === null;
        }),
      );
    },
  },
];

/** Runs every AES-256-GCM known-answer check on `f` (an exception counts as a failure). */
export function gcmKnownAnswerResults(f: AeadFactory): Array<{ name: string; ok: boolean }> {
  return CHECKS.map((c) => {
    let ok = false;
    try {
      ok = c.run(f);
    } catch {
      ok = false;
    }
    return { name: c.name, ok };
  });
}

/** The names of the AES-256-GCM known-answer checks `f` fails (empty = passed). */
export function gcmKnownAnswerFailures(f: AeadFactory): string[] {
  return gcmKnownAnswerResults(f)
    .filter((r) => !r.ok)
    .map((r) => r.name);
}
