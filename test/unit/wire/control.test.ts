// Control frames, protocol.md s2: exact members, strict types, strict base64url, frame bounds.
import t, { type Test } from 'tap';
import {
  ALERT_CODES,
  ControlFrameError,
  ControlFrameReader,
  FATAL_ALERTS,
  HANDSHAKE_ONLY_ALERTS,
  MAX_CONTROL_PAYLOAD,
  decodeControlPayload,
  encodeControl,
  isFatalAlert,
  truncateAlertMessage,
  type ControlMessage,
} from '../../../src/tunnel/core/wire/control.js';
import { WireError } from '../../../src/tunnel/core/wire/errors.js';
import { ErrorCodes, isQkdgwError } from '../../../src/errors.js';
import { caught, rep } from './helpers.js';

const b64 = (b: Buffer) => b.toString('base64url');

const samples: ControlMessage[] = [
  { type: 'HELLO', version: 1, identity: 'gw-a.example', suites: [1, 2], receiver_index: 0x01020304, epoch: 0 },
  { type: 'HELLO', version: 1, identity: 'gw-b.example', suites: [2], receiver_index: 0xffffffff, epoch: 7, next: 8 },
  { type: 'INIT', suite: 1, epoch: 1, mode: 0, key_IDs: ['0e9a3f8c-5b1d-4c2e-9f3a-7d6b5c4a3b2c'], N_I: rep(0x11, 32), pkX_I: rep(0x33, 32), ek_M: rep(0x44, 1184) },
  { type: 'INIT', suite: 2, epoch: 9, mode: 3, key_IDs: [], N_I: rep(0x11, 32), pkX_I: rep(0x33, 32), ek_M: rep(0x44, 1184) },
  { type: 'RESP', epoch: 1, N_R: rep(0x22, 32), pkX_R: rep(0x34, 32), ct_M: rep(0x55, 1088), tag_R: rep(0xfd, 32) },
  { type: 'CONFIRM', epoch: 1, tag_I: rep(0xf1, 32) },
  { type: 'REKEY_REQUEST', epoch: 3, reason: 'records' },
  { type: 'PING', id: 0 },
  { type: 'PONG', id: 123456789 },
  { type: 'ALERT', code: 'bad_message', message: 'duplicate member' },
  { type: 'ALERT', code: 'key_unavailable', message: '', epoch: 4 },
  { type: 'ALERT', code: 'bad_epoch', message: 'é😀', epoch: 12 },
];

t.test('every type round-trips through encodeControl / decodeControlPayload', async (t) => {
  for (const m of samples) {
    const frame = encodeControl(m);
    t.equal(frame.readUInt32BE(0), frame.length - 4, `${m.type}: length prefix`);
    const back = decodeControlPayload(frame.subarray(4));
    t.same(back, m, `${m.type} round trip`);
    t.equal(JSON.parse(frame.subarray(4).toString()).type, m.type, 'type member first-class');
  }
  // HELLO without next decodes without the member at all.
  t.notOk('next' in decodeControlPayload(encodeControl(samples[0]).subarray(4)));
});

t.test('members are written in table order with type first', async (t) => {
  const json = encodeControl({ type: 'CONFIRM', tag_I: rep(1, 32), epoch: 5 } as ControlMessage).subarray(4).toString();
  t.equal(json, `{"type":"CONFIRM","epoch":5,"tag_I":"${b64(rep(1, 32))}"}`);
});

// Raw JSON builder that can repeat members (JSON.stringify cannot).
const raw = (pairs: Array<[string, unknown]>) => '{' + pairs.map(([k, v]) => `${JSON.stringify(k)}:${typeof v === 'string' && v.startsWith('RAW:') ? v.slice(4) : JSON.stringify(v)}`).join(',') + '}';
const pairsOf = (m: ControlMessage): Array<[string, unknown]> => Object.entries(m).map(([k, v]) => [k, Buffer.isBuffer(v) ? b64(v) : v]);
const without = (p: Array<[string, unknown]>, k: string) => p.filter(([n]) => n !== k);
const withSet = (p: Array<[string, unknown]>, k: string, v: unknown) => p.map(([n, x]) => [n, n === k ? v : x] as [string, unknown]);

function expectBad(t: Test, name: string, json: string | Buffer, reason?: string): void {
  const e = caught(() => decodeControlPayload(typeof json === 'string' ? Buffer.from(json) : json));
  t.ok(e instanceof WireError, `${name}: WireError (${(e as Error)?.message})`);
  t.equal((e as WireError)?.alert, 'bad_message', `${name}: alert bad_message`);
  t.equal((e as WireError)?.code, ErrorCodes.WIRE_MALFORMED, `${name}: code`);
  if (reason) t.equal((e as WireError)?.reason, reason, `${name}: reason ${reason}`);
}

t.test('missing, extra and duplicated members -> bad_message (every type, every member)', async (t) => {
  for (const m of samples) {
    const p = pairsOf(m);
    for (const [k] of p) {
      if (k === 'type') continue;
      const optional = (m.type === 'HELLO' && k === 'next') || (m.type === 'ALERT' && k === 'epoch' && !['key_unavailable', 'bad_epoch'].includes((m as { code: string }).code));
      if (!optional) expectBad(t, `${m.type} without ${k}`, raw(without(p, k)), k === 'epoch' && m.type === 'ALERT' ? 'missing_member' : 'missing_member');
      const dupVal = p.find(([n]) => n === k)![1];
      expectBad(t, `${m.type} with ${k} twice (same value)`, raw([...p, [k, dupVal]]), 'json_duplicate');
    }
    expectBad(t, `${m.type} with an extra member`, raw([...p, ['extra', 1]]), 'extra_member');
    expectBad(t, `${m.type} with __proto__`, raw([...p, ['__proto__', {}]]), 'extra_member');
    expectBad(t, `${m.type} with member name in other case`, raw([...p, ['Type', m.type]]), 'extra_member');
    expectBad(t, `${m.type} without type`, raw(without(p, 'type')), 'missing_member');
    expectBad(t, `${m.type} type duplicated`, raw([...p, ['type', m.type]]), 'json_duplicate');
  }
  // next in a HELLO is a responder-only member: its presence rule is the session's; but an INIT with next is extra.
  expectBad(t, 'INIT with next', raw([...pairsOf(samples[2]), ['next', 1]]), 'extra_member');
  expectBad(t, 'ALERT handshake-only code without epoch', raw([['type', 'ALERT'], ['code', 'policy_refused'], ['message', 'x']]), 'missing_member');
  expectBad(t, 'ALERT bad_tag without epoch', raw([['type', 'ALERT'], ['code', 'bad_tag'], ['message', 'x']]), 'missing_member');
  expectBad(t, 'ALERT bad_epoch without epoch', raw([['type', 'ALERT'], ['code', 'bad_epoch'], ['message', 'x']]), 'missing_member');
});

t.test('wrong types and ranges -> bad_message', async (t) => {
  const hello = pairsOf(samples[0]);
  const init = pairsOf(samples[2]);
  const resp = pairsOf(samples[4]);
  const confirm = pairsOf(samples[5]);
  const alert = pairsOf(samples[10]);
  // Numbers not written as plain integers fail in the strict parser (json_syntax); the rest are member checks.
  const rows: Array<[string, Array<[string, unknown]>, string, unknown, string?]> = [
    ['HELLO version string', hello, 'version', '1'],
    ['HELLO version float', hello, 'version', 'RAW:1.5', 'json_syntax'],
    ['HELLO version 1.0 (integer written as float)', hello, 'version', 'RAW:1.0', 'json_syntax'],
    ['HELLO version 1e0', hello, 'version', 'RAW:1e0', 'json_syntax'],
    ['HELLO version 2^53 (not safe)', hello, 'version', 'RAW:9007199254740992'],
    ['HELLO identity number', hello, 'identity', 5],
    ['HELLO identity null', hello, 'identity', null],
    ['HELLO suites not array', hello, 'suites', 1],
    ['HELLO suites with string', hello, 'suites', ['1']],
    ['HELLO suites with 65536', hello, 'suites', [65536]],
    ['HELLO suites with -1', hello, 'suites', [-1]],
    ['HELLO suites 65 entries', hello, 'suites', Array(65).fill(1)],
    ['HELLO receiver_index 0', hello, 'receiver_index', 0],
    ['HELLO receiver_index 2^32', hello, 'receiver_index', 2 ** 32],
    ['HELLO receiver_index negative', hello, 'receiver_index', -1],
    ['HELLO epoch -1', hello, 'epoch', -1],
    ['HELLO epoch -0', hello, 'epoch', 'RAW:-0', 'json_syntax'],
    ['HELLO epoch string', hello, 'epoch', '0'],
    ['HELLO epoch true', hello, 'epoch', true],
    ['HELLO epoch 2^53', hello, 'epoch', 'RAW:9007199254740993'],
    ['INIT suite 65536', init, 'suite', 65536],
    ['INIT mode 256', init, 'mode', 256],
    ['INIT mode -1', init, 'mode', -1],
    ['INIT key_IDs not array', init, 'key_IDs', 'abc'],
    ['INIT key_IDs two entries', init, 'key_IDs', ['a', 'b']],
    ['INIT key_ID empty', init, 'key_IDs', ['']],
    ['INIT key_ID 65 chars', init, 'key_IDs', ['k'.repeat(65)]],
    ['INIT key_ID with tab', init, 'key_IDs', ['a\tb']],
    ['INIT key_ID with DEL', init, 'key_IDs', ['a\u007fb']],
    ['INIT key_ID non-ASCII', init, 'key_IDs', ['clé']],
    ['INIT key_ID number', init, 'key_IDs', [1]],
    ['INIT N_I 31 bytes', init, 'N_I', b64(rep(0x11, 31))],
    ['INIT N_I 33 bytes', init, 'N_I', b64(rep(0x11, 33))],
    ['INIT N_I with padding', init, 'N_I', b64(rep(0x11, 32)) + '='],
    ['INIT N_I standard base64 alphabet', init, 'N_I', rep(0xfb, 32).toString('base64').replace(/=+$/, '')],
    ['INIT N_I non-canonical last char', init, 'N_I', b64(rep(0x11, 32)).slice(0, -1) + 'F'],
    ['INIT N_I with space', init, 'N_I', ' ' + b64(rep(0x11, 32))],
    ['INIT N_I as array', init, 'N_I', [1, 2]],
    ['INIT pkX_I empty', init, 'pkX_I', ''],
    ['INIT ek_M 1183 bytes', init, 'ek_M', b64(rep(0x44, 1183))],
    ['RESP ct_M 1089 bytes', resp, 'ct_M', b64(rep(0x55, 1089))],
    ['RESP tag_R 16 bytes', resp, 'tag_R', b64(rep(1, 16))],
    ['RESP pkX_R 31 bytes', resp, 'pkX_R', b64(rep(1, 31))],
    ['CONFIRM tag_I 31 bytes', confirm, 'tag_I', b64(rep(1, 31))],
    ['REKEY_REQUEST unknown reason', pairsOf(samples[6]), 'reason', 'boredom'],
    ['REKEY_REQUEST reason upper case', pairsOf(samples[6]), 'reason', 'TIME'],
    ['PING id string', pairsOf(samples[7]), 'id', '1'],
    ['PING id negative', pairsOf(samples[7]), 'id', -5],
    ['PONG id float', pairsOf(samples[8]), 'id', 'RAW:0.5', 'json_syntax'],
    ['ALERT unknown code', alert, 'code', 'no_such_code'],
    ['ALERT code upper case', alert, 'code', 'BAD_MESSAGE'],
    ['ALERT message 257 chars', alert, 'message', 'm'.repeat(257)],
    ['ALERT message 257 astral chars', alert, 'message', '😀'.repeat(257)],
    ['ALERT message number', alert, 'message', 1],
    ['ALERT epoch negative', alert, 'epoch', -1],
  ];
  for (const [name, p, k, v, reason] of rows) expectBad(t, name, raw(withSet(p, k, v)), reason ?? 'bad_member');
  // Boundaries that pass.
  const ok: Array<[string, Array<[string, unknown]>, string, unknown]> = [
    ['HELLO receiver_index 1', hello, 'receiver_index', 1],
    ['HELLO version 2 (session answers bad_version)', hello, 'version', 2],
    ['HELLO version -3', hello, 'version', -3],
    ['HELLO empty suites (session answers no_common_suite)', hello, 'suites', []],
    ['HELLO epoch 2^53-1', hello, 'epoch', Number.MAX_SAFE_INTEGER],
    ['INIT key_ID 64 chars with space', init, 'key_IDs', [' '.repeat(1) + 'k'.repeat(63)]],
    ['INIT mode 255 (session checks bits)', init, 'mode', 255],
    ['INIT suite 65535 (session checks offer)', init, 'suite', 65535],
    ['ALERT message 256 astral chars', alert, 'message', '😀'.repeat(256)],
  ];
  for (const [name, p, k, v] of ok) t.doesNotThrow(() => decodeControlPayload(Buffer.from(raw(withSet(p, k, v)))), name);
});

t.test('frame-level faults -> bad_message', async (t) => {
  expectBad(t, 'unknown type', raw([['type', 'HELLO2'], ['id', 1]]), 'unknown_type');
  expectBad(t, 'type lower case', raw([['type', 'ping'], ['id', 1]]), 'unknown_type');
  expectBad(t, 'type number', raw([['type', 1], ['id', 1]]), 'unknown_type');
  expectBad(t, 'type __proto__', raw([['type', '__proto__']]), 'unknown_type');
  expectBad(t, 'type toString', raw([['type', 'toString']]), 'unknown_type');
  expectBad(t, 'array at top', '[{"type":"PING","id":1}]', 'frame_not_object');
  expectBad(t, 'string at top', '"PING"', 'frame_not_object');
  expectBad(t, 'null at top', 'null', 'frame_not_object');
  expectBad(t, 'empty payload', Buffer.alloc(0), 'frame_length');
  expectBad(t, 'payload over 65536', Buffer.alloc(MAX_CONTROL_PAYLOAD + 1, 0x20), 'frame_length');
  expectBad(t, 'invalid UTF-8', Buffer.concat([Buffer.from('{"type":"PING","id":1,"x":"'), Buffer.from([0xff]), Buffer.from('"}')]), 'json_utf8');
  expectBad(t, 'nested too deep', '{"type":"PING","id":[[[[[1]]]]]}', 'json_depth');
});

t.test('encodeControl refuses invalid messages (INTERNAL, never sent)', async (t) => {
  const bad: ControlMessage[] = [
    { type: 'CONFIRM', epoch: 1, tag_I: rep(1, 31) },
    { type: 'HELLO', version: 1, identity: 'a', suites: [1], receiver_index: 0, epoch: 0 },
    { type: 'ALERT', code: 'policy_refused', message: 'no epoch' },
    { type: 'ALERT', code: 'internal', message: 'x'.repeat(300) },
    { type: 'PING', id: 1.5 },
    { type: 'HELLO', version: 1, identity: 'x'.repeat(70_000), suites: [1], receiver_index: 1, epoch: 0 },
    { type: 'NOPE' } as unknown as ControlMessage,
  ];
  for (const m of bad) {
    const e = caught(() => encodeControl(m));
    t.ok(isQkdgwError(e, ErrorCodes.INTERNAL), `${m.type}: ${(e as Error)?.message}`);
  }
  t.equal(truncateAlertMessage('😀'.repeat(300)), '😀'.repeat(256));
  t.equal(truncateAlertMessage('short'), 'short');
  t.doesNotThrow(() => encodeControl({ type: 'ALERT', code: 'internal', message: truncateAlertMessage('x'.repeat(300)) }));
});

t.test('ALERT code tables (protocol.md s2)', async (t) => {
  t.same([...FATAL_ALERTS].sort(), ['bad_epoch', 'bad_identity', 'bad_message', 'bad_tag', 'bad_version', 'internal', 'no_common_suite', 'unexpected_message', 'unsupported']);
  t.same([...HANDSHAKE_ONLY_ALERTS].sort(), ['bad_tag', 'handshake_timeout', 'key_reused', 'key_unavailable', 'policy_refused']);
  t.equal(ALERT_CODES.length, 13);
  t.equal(isFatalAlert('bad_tag', { concernsTagI: true }), true, 'bad_tag about tag_I is fatal');
  t.equal(isFatalAlert('bad_tag', { concernsTagI: false }), false, 'bad_tag about tag_R is handshake-only');
  t.equal(isFatalAlert('bad_epoch', { concernsTagI: false }), true);
  t.equal(isFatalAlert('key_reused', { concernsTagI: true }), false);
  for (const c of ALERT_CODES) t.ok(FATAL_ALERTS.has(c) || HANDSHAKE_ONLY_ALERTS.has(c), `${c} is classified`);
});

t.test('ControlFrameReader', async (t) => {
  const stream = Buffer.concat(samples.map(encodeControl));

  t.test('one chunk with every frame', async (t) => {
    t.same(new ControlFrameReader().push(stream), samples);
  });

  t.test('byte by byte, and random splits', async (t) => {
    const r = new ControlFrameReader();
    const got: ControlMessage[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...r.push(stream.subarray(i, i + 1)));
    t.same(got, samples);
    t.equal(r.buffered, 0);
    const r2 = new ControlFrameReader();
    const got2: ControlMessage[] = [];
    for (let off = 0, step = 1; off < stream.length; off += step, step = (step * 7 + 3) % 1500 + 1) got2.push(...r2.push(stream.subarray(off, off + step)));
    t.same(got2, samples);
  });

  t.test('a length of 0 or > 65536 fails on the 4 length bytes, before any payload', async (t) => {
    for (const len of [0, MAX_CONTROL_PAYLOAD + 1, 0xffffffff]) {
      const r = new ControlFrameReader();
      const hdr = Buffer.alloc(4);
      hdr.writeUInt32BE(len >>> 0);
      t.same(r.push(hdr.subarray(0, 3)), [], 'three bytes: nothing yet');
      const e = caught(() => r.push(hdr.subarray(3)));
      t.ok(e instanceof WireError, `length ${len}`);
      t.equal((e as WireError).reason, 'frame_length');
      t.equal((e as WireError).alert, 'bad_message');
    }
  });

  t.test('exactly 65536 bytes is accepted (length bound inclusive)', async (t) => {
    const base = Buffer.from(raw([['type', 'ALERT'], ['code', 'internal'], ['message', 'x']]));
    const payload = Buffer.concat([base, Buffer.alloc(MAX_CONTROL_PAYLOAD - base.length, 0x20)]);
    const frame = Buffer.concat([Buffer.from([0, 1, 0, 0]), payload]);
    t.same(new ControlFrameReader().push(frame), [{ type: 'ALERT', code: 'internal', message: 'x' }]);
  });

  t.test('never buffers more than one frame', async (t) => {
    const r = new ControlFrameReader();
    const big = Buffer.concat([Buffer.from([0, 1, 0, 0]), Buffer.alloc(100, 0x20)]);
    r.push(big);
    t.ok(r.buffered <= 4 + MAX_CONTROL_PAYLOAD);
    t.equal(r.buffered, 100);
  });

  t.test('a bad frame after good ones: error carries the good ones; reader stays failed', async (t) => {
    const bad = Buffer.from('{"type":"PING","id":1,"id":2}');
    const badFrame = Buffer.concat([Buffer.from([0, 0, 0, bad.length]), bad]);
    const r = new ControlFrameReader();
    const e = caught(() => r.push(Buffer.concat([encodeControl(samples[7]), encodeControl(samples[8]), badFrame, encodeControl(samples[7])])));
    t.ok(e instanceof ControlFrameError);
    t.ok(e instanceof WireError);
    t.equal((e as ControlFrameError).reason, 'json_duplicate');
    t.same((e as ControlFrameError).before, [samples[7], samples[8]]);
    const e2 = caught(() => r.push(encodeControl(samples[7])));
    t.ok(e2 instanceof ControlFrameError, 'still failed');
    t.same((e2 as ControlFrameError).before, [], 'messages are handed out once');
  });
});
