// Issue 5 point 6, the second fence: whatever a log call hands to makeLogger, secret-named
// fields (any depth, any spelling), binary values, KeyObjects and PEM private keys never
// reach the output, in log objects, errors and child bindings alike; and a Buffer in a log
// object never makes the log call throw (it does with pino `redact` and a `*.*.x` path).
import t from 'tap';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { makeLogger, REDACTED, scrubLogValue, SECRET_FIELD_NAMES, isSecretFieldName } from '../../../src/daemon/logger.js';
import { QkdgwError, ErrorCodes } from '../../../src/errors.js';
import { SecretBytes } from '../../../src/util/secret.js';
import { findKeyLeaks } from '../../helpers/key-leak.js';

function capture(level = 'trace'): { log: ReturnType<typeof makeLogger>; out: () => string; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const log = makeLogger({ level, name: 'test', dest: { write: (s: string) => void chunks.push(s) } });
  const out = (): string => chunks.join('');
  return { log, out, lines: () => out().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

t.test('issue5-6 every secret-bearing field name is censored at any depth, whatever its spelling', async (t) => {
  const k = randomBytes(32);
  const hex = k.toString('hex');
  const { log, out, lines } = capture();
  const obj: Record<string, unknown> = { event: 'x', key_ID: 'id-1', epoch: 7 };
  for (const name of SECRET_FIELD_NAMES) obj[name] = hex;
  obj.private_key = hex;
  obj['PRIVATE-KEY'] = hex;
  obj.nested = { deeper: { evenDeeper: { kQkd: hex, shared_secret: hex, ok: 'visible' } } };
  obj.container = { keys: [{ key_ID: 'id-2', key: k.toString('base64') }] };
  obj.list = [{ psk: hex }, [{ passphrase: hex }]];
  log.info(obj, 'hello');
  const l = lines()[0];
  t.equal(l.event, 'x');
  t.equal(l.key_ID, 'id-1', 'key_IDs stay (they are not secret)');
  t.equal(l.epoch, 7);
  for (const name of SECRET_FIELD_NAMES) t.equal(l[name], REDACTED, `${name} censored`);
  t.equal(l.private_key, REDACTED);
  t.equal(l['PRIVATE-KEY'], REDACTED);
  t.same(l.nested, { deeper: { evenDeeper: { kQkd: REDACTED, shared_secret: REDACTED, ok: 'visible' } } }, 'three levels down');
  t.same(l.container, { keys: REDACTED });
  t.same(l.list, [{ psk: REDACTED }, [{ passphrase: REDACTED }]], 'inside arrays');
  t.same(findKeyLeaks([k], { out: out() }), [], 'the key appears nowhere in the output');
  t.ok(isSecretFieldName('Shared_Secret') && isSecretFieldName('flow-secret') && !isSecretFieldName('key_ID') && !isSecretFieldName('key_IDs'), 'name matching ignores case, _ and -; key_ID(s) are not secret');
});

t.test('issue5-6 binary values, KeyObjects, PEM private keys and SecretBytes never print their bytes', async (t) => {
  const k = randomBytes(32);
  const { privateKey } = generateKeyPairSync('x25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const { log, out, lines } = capture();
  // A top-level Buffer and a nested one: pino `redact` with `*.*.x` paths throws on these.
  t.doesNotThrow(() => log.info({ blob: k, deep: { er: { buf: Buffer.from(k) } }, u8: new Uint8Array(k), ab: k.buffer.slice(k.byteOffset, k.byteOffset + 32), ko: privateKey, cert: pem, sb: SecretBytes.from(k) }), 'logging bytes does not throw');
  const l = lines()[0];
  t.equal(l.blob, '[binary 32 bytes]');
  t.same(l.deep, { er: { buf: '[binary 32 bytes]' } });
  t.equal(l.u8, '[binary 32 bytes]');
  t.equal(l.ab, '[binary 32 bytes]');
  t.equal(l.ko, '[KeyObject private]');
  t.equal(l.cert, REDACTED, 'a PEM private key under any name');
  t.equal(l.sb, 'SecretBytes(32)');
  t.same(findKeyLeaks([k], { out: out() }), [], 'the key appears nowhere');
  t.notOk(out().includes('PRIVATE KEY'), 'no PEM private key');
});

t.test('issue5-6 errors keep type, message, code and stack; their secret fields are censored, nested errors too', async (t) => {
  const k = randomBytes(32).toString('base64');
  const { log, lines } = capture();
  const inner = Object.assign(new Error('inner'), { secret: k });
  const e = new QkdgwError(ErrorCodes.KMS_KEY_INVALID, 'bad key container', { key: k, key_ID: 'id-3' }, { cause: inner });
  log.error({ err: e, event: 'kme_rejected', other: { err2: e } });
  log.error(e as unknown as Record<string, unknown>); // pino's own form; the Logger interface does not offer it
  const [a, b] = lines();
  const err = a.err as Record<string, unknown>;
  t.equal(err.type, 'QkdgwError');
  t.equal(err.code, ErrorCodes.KMS_KEY_INVALID);
  t.match(String(err.message), /bad key container: inner/, 'pino folds the cause into message and stack');
  t.match(String(err.stack), /QkdgwError: bad key container[\s\S]*caused by: Error: inner/);
  t.same(err.details, { key: REDACTED, key_ID: 'id-3' });
  t.equal(err.cause, undefined, "the cause's fields are not printed at all");
  t.same(((a.other as Record<string, unknown>).err2 as Record<string, unknown>).details, { key: REDACTED, key_ID: 'id-3' }, 'a nested error too');
  t.equal((b.err as Record<string, unknown>).type, 'QkdgwError', 'log.error(err) form');
  t.notOk(JSON.stringify([a, b]).includes(k), 'the key appears nowhere');
});

t.test('issue5-6 child bindings are scrubbed at every level, and each level keeps its parents bindings', async (t) => {
  const { log, lines } = capture();
  const c = log.child({ peer: 'gw-b', secret: 's1' });
  const g = c.child({ component: 'control', psk: 's2', raw: Buffer.from('abc') });
  g.info({ event: 'y' });
  c.info({ event: 'z' });
  const [y, z] = lines();
  t.same([y.peer, y.secret, y.component, y.psk, y.raw, y.event], ['gw-b', REDACTED, 'control', REDACTED, '[binary 3 bytes]', 'y']);
  t.same([z.peer, z.secret, z.component, z.event], ['gw-b', REDACTED, undefined, 'z'], 'the child is unaffected by its own child');
});

t.test('issue5-6 scrubLogValue: circular, deep, toJSON, throwing getters; the input is not changed', async (t) => {
  const circ: Record<string, unknown> = { a: 1 };
  circ.self = circ;
  t.same(scrubLogValue(circ), { a: 1, self: '[Circular]' });
  const shared = { n: 1 };
  t.same(scrubLogValue({ x: shared, y: shared }), { x: { n: 1 }, y: { n: 1 } }, 'a shared object is not circular');
  let deep: Record<string, unknown> = { end: true };
  for (let i = 0; i < 20; i++) deep = { d: deep };
  t.match(JSON.stringify(scrubLogValue(deep)), /\[too deep\]/);
  t.equal(scrubLogValue(new Date(0)), '1970-01-01T00:00:00.000Z');
  t.same(scrubLogValue({ j: { toJSON: () => ({ key: 'k', v: 1 }) } }), { j: { key: REDACTED, v: 1 } }, 'what toJSON returns is scrubbed');
  const bad = { get boom(): unknown { throw new Error('no'); } };
  t.same(scrubLogValue({ bad }), { bad: '[unserialisable]' });
  const input = { key: 'k', nested: { password: 'p' } };
  scrubLogValue(input);
  t.same(input, { key: 'k', nested: { password: 'p' } }, 'input unchanged');
});

t.test('issue5-6 the level still filters, and the line format is unchanged', async (t) => {
  const { log, lines } = capture('info');
  log.debug({ event: 'hidden' });
  log.info({ event: 'shown' }, 'msg');
  const ls = lines();
  t.equal(ls.length, 1);
  t.match(ls[0], { level: 30, name: 'test', event: 'shown', msg: 'msg', pid: process.pid });
  t.match(String(ls[0].time), /^\d{4}-\d\d-\d\dT/);
});
