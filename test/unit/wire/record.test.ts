// Carrier record header, RecordReader, preamble and L3 header: protocol.md s5.1, s5.2, s3.5 rows.
import t, { type Test } from 'tap';
import {
  MAX_RECORD_CT_LEN,
  RECORD_HEADER_LEN,
  RecordReader,
  RecordType,
  RstReason,
  ctLenBounds,
  decodeRecordHeader,
  encodeRecordHeader,
  rstReasonName,
  type CarrierRecordType,
  type RecordHeader,
  PREAMBLE_LEN,
  PREAMBLE_FLOW_ID_LEN,
  decodePreamble,
  encodePreamble,
  L3_HEADER_LEN,
  decodeL3Header,
  encodeL3Header,
  splitL3Datagram,
} from '../../../src/tunnel/core/wire/record.js';
import { WireError } from '../../../src/tunnel/core/wire/errors.js';
import { FLOW_ID_LEN } from '../../../src/kdf/flow.js';
import { ErrorCodes, isQkdgwError } from '../../../src/errors.js';
import { caught, hex, rep } from './helpers.js';

t.test('s3.5 vector: carrier DATA header (type 2, epoch 1, counter 0, ct_len 21)', async (t) => {
  const h = encodeRecordHeader({ type: RecordType.DATA, epochLow32: 1, counter: 0, ctLen: 21 });
  t.equal(hex(h), '0200000000000001000000000000000000000015');
  t.same(decodeRecordHeader(h), { type: 2, epochLow32: 1, counter: 0, ctLen: 21 });
});

t.test('per-type ct_len bounds (protocol.md s5.1 table)', async (t) => {
  const want: Record<number, [number, number]> = { 1: [17, 271], 2: [17, 65552], 3: [16, 16], 5: [18, 18], 6: [16, 16] };
  for (const [type, [min, max]] of Object.entries(want)) {
    const ty = Number(type) as CarrierRecordType;
    t.same(ctLenBounds(ty), { min, max }, `type ${type}`);
    for (const ok of [min, max]) t.doesNotThrow(() => decodeRecordHeader(encodeRecordHeader({ type: ty, epochLow32: 0, counter: 0, ctLen: ok })), `type ${type} ct_len ${ok}`);
    for (const bad of [min - 1, max + 1]) {
      const h = Buffer.from(encodeRecordHeader({ type: ty, epochLow32: 0, counter: 0, ctLen: min }));
      h.writeUInt32BE(bad, 16);
      t.equal((caught(() => decodeRecordHeader(h)) as WireError)?.reason, 'record_length', `type ${type} ct_len ${bad}`);
    }
  }
});

t.test('round trips: epoch low32 and counters up to 2^53-1', async (t) => {
  const rows: RecordHeader[] = [
    { type: 1, epochLow32: 0xffffffff, counter: 0, ctLen: 17 },
    { type: 2, epochLow32: 0x80000000, counter: 2 ** 32, ctLen: MAX_RECORD_CT_LEN },
    { type: 3, epochLow32: 7, counter: Number.MAX_SAFE_INTEGER, ctLen: 16 },
    { type: 5, epochLow32: 1, counter: 0x1234_5678_9a, ctLen: 18 },
    { type: 6, epochLow32: 2, counter: 1, ctLen: 16 },
  ];
  for (const h of rows) t.same(decodeRecordHeader(encodeRecordHeader(h)), h);
  const out = Buffer.alloc(30, 0xee);
  encodeRecordHeader(rows[1], out, 5);
  t.same(decodeRecordHeader(out, 5), rows[1], 'at an offset');
  t.equal(out[4], 0xee);
  t.equal(out[25], 0xee);
});

t.test('malformed headers -> WireError before the body', async (t) => {
  const good = () => Buffer.from('0200000000000001000000000000000000000015', 'hex');
  const rows: Array<[string, (b: Buffer) => void, string]> = [
    ['type 0', (b) => (b[0] = 0), 'record_type'],
    ['type 0x04 (L3, never on a carrier)', (b) => (b[0] = 4), 'record_type'],
    ['type 0x07', (b) => (b[0] = 7), 'record_type'],
    ['type 0xff', (b) => (b[0] = 0xff), 'record_type'],
    ['flags 1', (b) => (b[1] = 1), 'record_flags'],
    ['flags 0x80', (b) => (b[1] = 0x80), 'record_flags'],
    ['reserved 0x0100', (b) => (b[2] = 1), 'record_reserved'],
    ['reserved 0x0001', (b) => (b[3] = 1), 'record_reserved'],
    ['counter 2^53', (b) => b.writeUInt32BE(0x200000, 8), 'record_counter'],
    ['counter 2^64-1', (b) => { b.writeUInt32BE(0xffffffff, 8); b.writeUInt32BE(0xffffffff, 12); }, 'record_counter'],
    ['ct_len 0', (b) => b.writeUInt32BE(0, 16), 'record_length'],
    ['ct_len 15', (b) => b.writeUInt32BE(15, 16), 'record_length'],
    ['ct_len 65553', (b) => b.writeUInt32BE(65553, 16), 'record_length'],
    ['ct_len 2^32-1', (b) => b.writeUInt32BE(0xffffffff, 16), 'record_length'],
    ['DATA ct_len 16 (empty DATA)', (b) => b.writeUInt32BE(16, 16), 'record_length'],
    ['FIN ct_len 17', (b) => { b[0] = 3; b.writeUInt32BE(17, 16); }, 'record_length'],
    ['KEEPALIVE ct_len 17', (b) => { b[0] = 6; b.writeUInt32BE(17, 16); }, 'record_length'],
    ['RST ct_len 17', (b) => { b[0] = 5; b.writeUInt32BE(17, 16); }, 'record_length'],
    ['RST ct_len 19', (b) => { b[0] = 5; b.writeUInt32BE(19, 16); }, 'record_length'],
    ['OPEN ct_len 16 (empty name)', (b) => { b[0] = 1; b.writeUInt32BE(16, 16); }, 'record_length'],
    ['OPEN ct_len 272 (256-byte name)', (b) => { b[0] = 1; b.writeUInt32BE(272, 16); }, 'record_length'],
  ];
  for (const [name, mutate, reason] of rows) {
    const b = good();
    mutate(b);
    const e = caught(() => decodeRecordHeader(b));
    t.ok(e instanceof WireError, name);
    t.equal((e as WireError).reason, reason, `${name}: ${reason}`);
    t.equal((e as WireError).code, ErrorCodes.WIRE_MALFORMED);
    // The stream reader fails on the 20 header bytes alone, no body needed.
    const r = new RecordReader();
    t.equal((caught(() => r.push(b)) as WireError)?.reason, reason, `${name}: RecordReader fails on the header alone`);
  }
  t.equal((caught(() => decodeRecordHeader(Buffer.alloc(19))) as WireError).reason, 'record_short');
});

t.test('encodeRecordHeader refuses what must never be sent (INTERNAL)', async (t) => {
  const rows: RecordHeader[] = [
    { type: 4 as CarrierRecordType, epochLow32: 1, counter: 0, ctLen: 20 },
    { type: 9 as CarrierRecordType, epochLow32: 1, counter: 0, ctLen: 20 },
    { type: 2, epochLow32: 2 ** 32, counter: 0, ctLen: 20 },
    { type: 2, epochLow32: -1, counter: 0, ctLen: 20 },
    { type: 2, epochLow32: 1, counter: -1, ctLen: 20 },
    { type: 2, epochLow32: 1, counter: 2 ** 53, ctLen: 20 },
    { type: 2, epochLow32: 1, counter: 0, ctLen: 16 },
    { type: 3, epochLow32: 1, counter: 0, ctLen: 17 },
  ];
  for (const h of rows) t.ok(isQkdgwError(caught(() => encodeRecordHeader(h)), ErrorCodes.INTERNAL), JSON.stringify(h));
  t.ok(isQkdgwError(caught(() => encodeRecordHeader({ type: 2, epochLow32: 1, counter: 0, ctLen: 20 }, Buffer.alloc(19))), ErrorCodes.INTERNAL));
});

t.test('RST reasons table; unknown codes read as internal', async (t) => {
  t.same(RstReason, { unknown_service: 1, target_unreachable: 2, target_reset: 3, client_reset: 4, protocol_error: 5, key_expired: 6, busy: 7, shutdown: 8, internal: 0xffff });
  for (const [name, code] of Object.entries(RstReason)) t.equal(rstReasonName(code), name);
  for (const code of [0, 9, 100, 0xfffe]) t.equal(rstReasonName(code), 'internal', `code ${code}`);
});

function record(type: CarrierRecordType, counter: number, bodyLen: number, fill: number): Buffer {
  return Buffer.concat([encodeRecordHeader({ type, epochLow32: 1, counter, ctLen: bodyLen }), rep(fill, bodyLen)]);
}

t.test('RecordReader', async (t) => {
  const recs = [record(1, 0, 20, 0xa1), record(2, 1, 65552, 0xa2), record(6, 2, 16, 0xa3), record(2, 3, 17, 0xa4), record(3, 4, 16, 0xa5)];
  const stream = Buffer.concat(recs);
  const check = (t: Test, got: Array<{ header: RecordHeader; body: Buffer }>) => {
    t.equal(got.length, recs.length);
    got.forEach((r, i) => {
      t.same(encodeRecordHeader(r.header), recs[i].subarray(0, 20), `record ${i} header`);
      t.ok(r.body.equals(recs[i].subarray(20)), `record ${i} body`);
    });
  };

  t.test('one chunk', async (t) => check(t, new RecordReader().push(stream)));

  t.test('byte by byte and odd splits', async (t) => {
    const r = new RecordReader();
    const got = [];
    for (let i = 0; i < stream.length; i++) got.push(...r.push(stream.subarray(i, i + 1)));
    check(t, got);
    t.equal(r.buffered, 0);
    const r2 = new RecordReader();
    const got2 = [];
    for (let off = 0, step = 3; off < stream.length; off += step, step = (step * 13 + 7) % 40000 + 1) got2.push(...r2.push(stream.subarray(off, off + step)));
    check(t, got2);
  });

  t.test('buffers at most one record', async (t) => {
    const r = new RecordReader();
    t.same(r.push(recs[1].subarray(0, 30000)), []);
    t.equal(r.buffered, 30000);
    t.ok(r.buffered <= RECORD_HEADER_LEN + MAX_RECORD_CT_LEN);
    const got = r.push(Buffer.concat([recs[1].subarray(30000), recs[2].subarray(0, 10)]));
    t.equal(got.length, 1);
    t.equal(r.buffered, 10);
  });

  t.test('a bad header after good records throws; reader stays failed', async (t) => {
    const bad = Buffer.from(recs[2]);
    bad[1] = 1;
    const r = new RecordReader();
    t.same(r.push(recs[0]).length, 1);
    t.equal((caught(() => r.push(Buffer.concat([recs[3], bad]))) as WireError).reason, 'record_flags');
    t.equal((caught(() => r.push(recs[0])) as WireError).reason, 'record_flags', 'still failed');
  });

  t.test('a header split across chunks is validated once complete', async (t) => {
    const bad = Buffer.from(recs[0]);
    bad[0] = 4;
    const r = new RecordReader();
    t.same(r.push(bad.subarray(0, 19)), []);
    t.equal((caught(() => r.push(bad.subarray(19, 20))) as WireError).reason, 'record_type');
  });
});

t.test('preamble (28 bytes)', async (t) => {
  const flowId = rep(0x77, 16);
  const p = encodePreamble({ receiverIndex: 0x01020304, flowId });
  t.equal(p.length, PREAMBLE_LEN);
  t.equal(hex(p), '51475731' + '01' + '00' + '0000' + '01020304' + '77'.repeat(16));
  const d = decodePreamble(Buffer.concat([p, Buffer.from([9, 9])]));
  t.equal(d.receiverIndex, 0x01020304);
  t.ok(d.flowId.equals(flowId));
  p[27] = 0;
  t.equal(d.flowId[15], 0x77, 'flowId is a copy');
  t.equal(PREAMBLE_FLOW_ID_LEN, FLOW_ID_LEN, 'same flow_id length as src/kdf/flow.ts');
  const good = () => encodePreamble({ receiverIndex: 5, flowId });
  const rows: Array<[string, (b: Buffer) => void, string]> = [
    ['magic qgw1', (b) => (b[0] = 0x71), 'preamble_magic'],
    ['magic QGW2', (b) => (b[3] = 0x32), 'preamble_magic'],
    ['version 0', (b) => (b[4] = 0), 'preamble_version'],
    ['version 2', (b) => (b[4] = 2), 'preamble_version'],
    ['reserved u8', (b) => (b[5] = 1), 'preamble_reserved'],
    ['reserved u16 high', (b) => (b[6] = 1), 'preamble_reserved'],
    ['reserved u16 low', (b) => (b[7] = 0x80), 'preamble_reserved'],
    ['receiver_index 0', (b) => b.writeUInt32BE(0, 8), 'preamble_index'],
  ];
  for (const [name, mutate, reason] of rows) {
    const b = good();
    mutate(b);
    t.equal((caught(() => decodePreamble(b)) as WireError)?.reason, reason, name);
  }
  t.equal((caught(() => decodePreamble(good().subarray(0, 27))) as WireError).reason, 'preamble_short');
  t.ok(isQkdgwError(caught(() => encodePreamble({ receiverIndex: 0, flowId })), ErrorCodes.INTERNAL));
  t.ok(isQkdgwError(caught(() => encodePreamble({ receiverIndex: 1, flowId: rep(1, 15) })), ErrorCodes.INTERNAL));
});

t.test('L3 header: s3.5 vector and malformed variants', async (t) => {
  const h = encodeL3Header({ receiverIndex: 0x01020304, epochLow32: 1, counter: 1 });
  t.equal(h.length, L3_HEADER_LEN);
  t.equal(hex(h), '0400000001020304000000010000000000000001');
  t.same(decodeL3Header(h), { receiverIndex: 0x01020304, epochLow32: 1, counter: 1 });
  t.same(decodeL3Header(encodeL3Header({ receiverIndex: 0xffffffff, epochLow32: 0xffffffff, counter: Number.MAX_SAFE_INTEGER })), { receiverIndex: 0xffffffff, epochLow32: 0xffffffff, counter: Number.MAX_SAFE_INTEGER });
  const rows: Array<[string, (b: Buffer) => void, string]> = [
    ['type 0x02', (b) => (b[0] = 2), 'l3_type'],
    ['flags', (b) => (b[1] = 1), 'l3_flags'],
    ['reserved', (b) => (b[3] = 1), 'l3_reserved'],
    ['receiver_index 0', (b) => b.writeUInt32BE(0, 4), 'l3_index'],
    ['counter 2^53', (b) => b.writeUInt32BE(0x200000, 12), 'l3_counter'],
  ];
  for (const [name, mutate, reason] of rows) {
    const b = Buffer.from(h);
    mutate(b);
    t.equal((caught(() => decodeL3Header(b)) as WireError)?.reason, reason, name);
  }
  t.equal((caught(() => decodeL3Header(h.subarray(0, 19))) as WireError).reason, 'l3_short');
  const dgram = Buffer.concat([h, rep(0xab, 21)]);
  const s = splitL3Datagram(dgram);
  t.same(s.header, { receiverIndex: 0x01020304, epochLow32: 1, counter: 1 });
  t.ok(s.aad.equals(h));
  t.equal(s.sealed.length, 21);
  t.equal((caught(() => splitL3Datagram(dgram.subarray(0, 35))) as WireError).reason, 'l3_short');
  t.doesNotThrow(() => splitL3Datagram(dgram.subarray(0, 36)));
  t.ok(isQkdgwError(caught(() => encodeL3Header({ receiverIndex: 0, epochLow32: 1, counter: 1 })), ErrorCodes.INTERNAL));
});
