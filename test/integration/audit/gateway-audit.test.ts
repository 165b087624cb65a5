// Issue 5 key audit trail, wired into the gateway: with `audit.file` set, key lifecycle
// events of a real tunnel (key fetched, epoch switch with its key_ID, zeroized) land in a
// hash-chained file that `verifyAuditFile` accepts, and no key byte ever appears in it.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLab, until } from '../../helpers/lab.js';
import { verifyAuditFile } from '../../../src/daemon/audit-verify.js';

t.test('audit trail of gw-a across rekeys: chained, complete, no key bytes', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'audit.jsonl');
  const lab = await startLab(t, { rekeyAfterTime: '1s', rekeyJitter: '0s', handshakeTimeout: '2s', hardLimitTime: '10s', grace: '3s', editA: (y) => `${y}\naudit:\n  file: ${file}\n` });
  await lab.ready();
  const first = lab.rtA().session.slots.current!.n;
  await until(() => lab.rtA().session.slots.current!.n >= first + 3, 15_000, '3 rekeys');
  await lab.stop();

  const v = verifyAuditFile(file);
  t.equal(v.ok, true, `chain intact over ${v.lines} lines`);
  const recs = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const names = new Set(recs.map((r) => r.event));
  for (const e of ['audit_opened', 'key_fetched', 'handshake_started', 'epoch_switch', 'epoch_zeroized', 'audit_closed']) t.ok(names.has(e), `records ${e}`);
  const switched = recs.filter((r) => r.event === 'epoch_switch');
  t.ok(switched.length >= 4, `${switched.length} epoch switches recorded`);
  t.ok(switched.every((r) => typeof r.key_ID === 'string' && r.peer === 'gw-b'), 'each switch names its key_ID and peer');
  // Only whitelisted fields, whatever the gateway logged: no room for key material.
  const allowed = new Set(['seq', 'time', 'event', 'peer', 'key_ID', 'epoch', 'mode', 'reason', 'prev']);
  const extra = recs.flatMap((r) => Object.keys(r).filter((k) => !allowed.has(k)));
  t.same(extra, [], 'no field outside the audit whitelist');
  const delivered = new Set(lab.sim.deliveries.filter((d) => d.side === 'enc').map((d) => d.key_ID.toLowerCase()));
  const fetched = recs.filter((r) => r.event === 'key_fetched').map((r) => String(r.key_ID).toLowerCase());
  t.ok(fetched.length > 0 && fetched.every((k) => delivered.has(k)), 'every key_fetched names a key_ID the KME delivered to gw-a');
});
