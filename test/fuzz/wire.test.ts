// Fuzz (bounded, seeded): random and mutated control frames, carrier records, preambles and L3
// headers. Only typed errors (WireError; CarrierAbort from the carrier core), never another throw,
// never a hang.
import t from 'tap';
import { ControlFrameReader, decodeControlPayload, encodeControl, type ControlMessage } from '../../src/tunnel/core/wire/control.js';
import { WireError } from '../../src/tunnel/core/wire/errors.js';
import { parseStrictJson } from '../../src/tunnel/core/wire/strict-json.js';
import { RECORD_HEADER_LEN, RecordReader, decodeL3Header, decodePreamble, decodeRecordHeader, encodePreamble, encodeL3Header, splitL3Datagram } from '../../src/tunnel/core/wire/record.js';
import { CarrierAbort } from '../../src/tunnel/core/carrier.js';
import { prng, rep } from '../unit/wire/helpers.js';
import { Bench } from '../unit/carrier/helpers.js';

const SEED = 0xc0ffee;
const rnd = prng(SEED);

const samples: ControlMessage[] = [
  { type: 'HELLO', version: 1, identity: 'gw-a.example', suites: [1, 2], receiver_index: 77, epoch: 3, next: 4 },
  { type: 'INIT', suite: 1, epoch: 1, mode: 0, key_IDs: ['0e9a3f8c-5b1d-4c2e-9f3a-7d6b5c4a3b2c'], N_I: rep(0x11, 32), pkX_I: rep(0x33, 32), ek_M: rep(0x44, 1184) },
  { type: 'RESP', epoch: 1, N_R: rep(0x22, 32), pkX_R: rep(0x34, 32), ct_M: rep(0x55, 1088), tag_R: rep(0xfd, 32) },
  { type: 'CONFIRM', epoch: 1, tag_I: rep(0xf1, 32) },
  { type: 'REKEY_REQUEST', epoch: 3, reason: 'time' },
  { type: 'PING', id: 9 },
  { type: 'ALERT', code: 'key_reused', message: 'key_ID seen', epoch: 2 },
];

const TOKENS = ['{', '}', '[', ']', ',', ':', '"', '\\', '\\u', '\\ud800', 'null', 'true', '-0', '1e9', '1.5', '9007199254740993', '"__proto__"', '"type"', '"epoch"', '"", ', '\u0000', '\u00ff', '😀'];

function mutate(src: Buffer): Buffer {
  let b = Buffer.from(src);
  const n = 1 + rnd.int(4);
  for (let i = 0; i < n; i++) {
    const at = b.length ? rnd.int(b.length) : 0;
    switch (rnd.int(7)) {
      case 0: if (b.length) b[at] ^= 1 << rnd.int(8); break;
      case 1: if (b.length) b[at] = rnd.int(256); break;
      case 2: b = Buffer.concat([b.subarray(0, at), rnd.bytes(1 + rnd.int(4)), b.subarray(at)]); break;
      case 3: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rnd.int(8)))]); break;
      case 4: b = b.subarray(0, at); break;
      case 5: b = Buffer.concat([b.subarray(0, at), Buffer.from(TOKENS[rnd.int(TOKENS.length)]), b.subarray(at)]); break;
      case 6: { const from = rnd.int(b.length + 1); b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + rnd.int(16)), b.subarray(at)]); break; }
    }
  }
  return b;
}

/** Runs f; returns 'ok', or the error's class when typed; fails the test on any other throw. */
function typed(t: { fail(m: string): void }, what: string, f: () => unknown, allowed: Array<new (...a: never[]) => Error> = [WireError]): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (allowed.some((c) => e instanceof c)) return (e as Error).name;
    t.fail(`${what}: untyped throw ${(e as Error)?.stack ?? String(e)}`);
    return 'untyped';
  }
}

t.test(`control payloads and frames (seed ${SEED})`, async (t) => {
  const started = Date.now();
  const tally = new Map<string, number>();
  let maxBuffered = 0;
  const payloads = samples.map((m) => encodeControl(m).subarray(4));
  for (let i = 0; i < 4000; i++) {
    const base = payloads[rnd.int(payloads.length)];
    const p = i % 10 === 0 ? rnd.bytes(rnd.int(200)) : mutate(base);
    const r = typed(t, `payload #${i}`, () => decodeControlPayload(p));
    tally.set(r, (tally.get(r) ?? 0) + 1);
    typed(t, `strict JSON #${i}`, () => parseStrictJson(p));
    // Same bytes as a framed stream, in random chunks, after a valid frame.
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0]), p]);
    frame.writeUInt32BE(i % 50 === 0 ? rnd.int(2 ** 32) : p.length, 0);
    const stream = Buffer.concat([encodeControl(samples[5]), frame]);
    const reader = new ControlFrameReader();
    typed(t, `reader #${i}`, () => {
      for (let off = 0; off < stream.length; ) {
        const step = 1 + rnd.int(64);
        reader.push(stream.subarray(off, off + step));
        off += step;
      }
    });
    maxBuffered = Math.max(maxBuffered, reader.buffered);
  }
  t.ok(maxBuffered <= 4 + 65536, `reader never held more than one frame (max ${maxBuffered})`);
  t.ok((tally.get('WireError') ?? 0) > 1000, `most mutations rejected (${JSON.stringify([...tally])})`);
  t.ok(Date.now() - started < 60_000, 'bounded time');
});

t.test(`carrier records, preambles, L3 headers (seed ${SEED})`, async (t) => {
  const started = Date.now();
  const b = new Bench();
  b.add(1);
  b.add(2);
  const entry = b.session('entry');
  const recs: Buffer[] = [entry.sealOpen('web', b.sendOf('entry', 1))];
  for (let i = 0; i < 8; i++) recs.push(entry.sealData(rnd.bytes(1 + rnd.int(500)), b.sendOf('entry', i < 4 ? 1 : 2)));
  recs.push(entry.sealFin(b.sendOf('entry', 2)));
  const stream = Buffer.concat(recs);
  let accepted = 0;
  let maxBuffered = 0;
  for (let i = 0; i < 3000; i++) {
    const s = i % 10 === 0 ? rnd.bytes(rnd.int(400)) : i % 3 === 0 ? mutate(stream.subarray(0, 200)) : mutate(stream);
    typed(t, `header #${i}`, () => decodeRecordHeader(s));
    const reader = new RecordReader();
    const exit = b.session('exit');
    typed(t, `stream #${i}`, () => {
      for (let off = 0; off < s.length; ) {
        const step = 1 + rnd.int(300);
        for (const r of reader.push(s.subarray(off, off + step))) {
          exit.openRecord(r.header, r.body);
          accepted++;
        }
        off += step;
      }
    }, [WireError, CarrierAbort]);
    maxBuffered = Math.max(maxBuffered, reader.buffered);
    typed(t, `preamble #${i}`, () => decodePreamble(i % 2 ? mutate(encodePreamble({ receiverIndex: 9, flowId: rep(7, 16) })) : rnd.bytes(rnd.int(40))));
    const l3 = Buffer.concat([encodeL3Header({ receiverIndex: 9, epochLow32: 1, counter: i }), rnd.bytes(16)]);
    typed(t, `L3 #${i}`, () => decodeL3Header(mutate(l3)));
    typed(t, `L3 datagram #${i}`, () => splitL3Datagram(mutate(l3)));
  }
  t.ok(maxBuffered <= RECORD_HEADER_LEN + 65552, `reader never held more than one record (max ${maxBuffered})`);
  t.ok(accepted > 0, `some unmutated prefixes still authenticate (${accepted} records)`);
  t.ok(Date.now() - started < 60_000, 'bounded time');
});
