// A key pool log line names its peer once: the binding carries peerSaeId, the line must not
// repeat it (pino writes both, giving a JSON object with a duplicate key).
import t from 'tap';
import pino from 'pino';
import { Writable } from 'node:stream';
import { KeyPool, type KeyPoolSource } from '../../../src/kms/key-pool.js';
import { ManualClock } from '../../../src/util/clock.js';
import type { Logger } from '../../../src/util/logger.js';

t.test('key pool lines carry peerSaeId exactly once', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const log = pino({ level: 'trace' }, sink) as unknown as Logger;
  const source: KeyPoolSource = {
    getKeys: async () => [],
    status: async () => {
      throw new Error('no KME here');
    },
  };
  const pool = new KeyPool({ source, peerSaeId: 'gw-b', clock: new ManualClock(), logger: log, target: 1, statusIntervalMs: 10_000 });
  pool.start();
  for (let i = 0; i < 5 && !lines.some((l) => l.includes('"kme_status_failed"')); i++) await new Promise((r) => setImmediate(r));
  pool.close();
  const failed = lines.find((l) => l.includes('"kme_status_failed"'));
  t.ok(failed, 'kme_status_failed written');
  t.equal(failed!.match(/"peerSaeId"/g)?.length, 1, `peerSaeId once in ${failed}`);
});

t.test('closing the pool names the key_IDs it zeroized (the audit trail records each disposal)', async (t) => {
  const { MemoryLogger } = await import('../../../src/util/logger.js');
  const { SecretBytes } = await import('../../../src/util/secret.js');
  const log = new MemoryLogger();
  let n = 0;
  const handed: string[] = [];
  const source: KeyPoolSource = {
    getKeys: async (_peer, count) =>
      Array.from({ length: count }, () => {
        const keyId = `7d3c1f00-0000-4000-8000-${String(++n).padStart(12, '0')}`;
        handed.push(keyId);
        return { keyId, key: SecretBytes.zero(32) };
      }),
    status: async () => {
      throw new Error('no KME here');
    },
  };
  const pool = new KeyPool({ source, peerSaeId: 'gw-b', clock: new ManualClock(), logger: log, target: 2, statusIntervalMs: 10_000 });
  pool.start();
  for (let i = 0; i < 10 && pool.stats().stock < 2; i++) await new Promise((r) => setImmediate(r));
  t.equal(pool.stats().stock, 2, 'two keys held ahead');
  pool.close();
  const closed = log.lines.find((l) => l.event === 'key_pool_closed');
  t.same(closed?.keyIds, handed.slice(0, 2), 'key_pool_closed lists the key_IDs zeroized');
  t.equal(closed?.zeroized, 2);
});

t.test('reconfigure: a larger target refills at once and keeps the keys held; bad numbers change nothing', async (t) => {
  const { SecretBytes } = await import('../../../src/util/secret.js');
  let n = 0;
  const source: KeyPoolSource = {
    getKeys: async (_peer, count) => Array.from({ length: count }, () => ({ keyId: `7d3c1f00-0000-4000-8000-${String(++n).padStart(12, '0')}`, key: SecretBytes.zero(32) })),
    status: async () => {
      throw new Error('no KME here');
    },
  };
  const pool = new KeyPool({ source, peerSaeId: 'gw-b', clock: new ManualClock(), target: 1, statusIntervalMs: 10_000 });
  t.teardown(() => pool.close());
  pool.start();
  for (let i = 0; i < 10 && pool.stats().stock < 1; i++) await new Promise((r) => setImmediate(r));
  t.equal(pool.stats().stock, 1);
  t.throws(() => pool.reconfigure({ target: -1 }), { code: 'QKDGW_E_KMS_CONFIG' });
  t.equal(pool.target, 1, 'unchanged after a refused reconfigure');
  pool.reconfigure({ target: 3, forecastLowSec: 60 });
  for (let i = 0; i < 10 && pool.stats().stock < 3; i++) await new Promise((r) => setImmediate(r));
  t.equal(pool.stats().stock, 3, 'refilled to the new target');
  t.equal(n, 3, 'the first key was kept, two more fetched');
});
