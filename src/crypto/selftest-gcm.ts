/**
 * AES-256-GCM known-answer test run on each backend before it is used (architecture.md
 * habit 5). Checks a published vector, the protocol.md s3.5 carrier record, rejection of
 * a flipped bit and of a truncated tag (Node 20 accepts those unless told not to), that
 * a failed open leaves no plaintext in the caller's buffer, and batches = single records.
 */
import type { AeadFactory } from './aead.js';
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
