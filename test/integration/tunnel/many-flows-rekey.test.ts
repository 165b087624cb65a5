// BC-23 kind: many carriers at once while epochs switch every 2 s. Every record's header
// must name the key it was sealed with, carriers opened under one epoch must keep working
// under the next, and flows opened right at a switch must be admitted: every byte intact,
// zero resets, zero authentication failures.
import t from 'tap';
import { randomBytes, randomInt } from 'node:crypto';
import { startLab, dial, collect, sha256, type Lab } from '../../helpers/lab.js';

const WORKERS = 50;
const MAX_FLOW = 1 << 20;
const REKEYS = 3;

/** One echo flow of a random size up to 1 MiB, written in paced chunks so that it spans a while. */
async function flow(lab: Lab): Promise<{ ok: boolean; how: string; size: number }> {
  const size = randomInt(1, MAX_FLOW + 1);
  const payload = randomBytes(size);
  const s = await dial(lab.servicePort);
  const out = collect(s);
  // 15..40 pieces, 80 ms apart: each flow lasts more than 1 s, so 50 workers open at most
  // 50 carriers a second (gw-b's data port admits 100 new connections per second per source).
  const pieces = randomInt(15, 41);
  const step = Math.ceil(size / pieces);
  for (let off = 0; off < size; off += step) {
    if (s.destroyed) break;
    s.write(payload.subarray(off, Math.min(size, off + step)));
    await new Promise((r) => setTimeout(r, 80));
  }
  s.end();
  const r = await out;
  return { ok: r.how === 'eof' && r.bytes === size && sha256(r.data) === sha256(payload), how: r.how, size };
}

t.test('BC-23 50 parallel echo flows across rekeys at a 2 s interval: every byte intact, zero resets', async (t) => {
  const lab = await startLab(t, { rekeyAfterTime: '2s', hardLimitTime: '30s' });
  await lab.ready();
  const first = lab.rtA().session.slots.current!.n;
  const results: Array<{ ok: boolean; how: string; size: number }> = [];
  const rekeyed = (): boolean => lab.rtA().session.slots.current!.n >= first + REKEYS && lab.rtB().session.slots.current!.n >= first + REKEYS;
  const worker = async (): Promise<void> => {
    do results.push(await flow(lab));
    while (!rekeyed());
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));

  const bad = results.filter((r) => !r.ok);
  t.ok(results.length >= WORKERS * 2, `${results.length} flows, ${(results.reduce((n, r) => n + r.size, 0) / 2 ** 20).toFixed(0)} MiB each way`);
  t.same(bad, [], 'every flow echoed every byte intact and ended with a clean EOF');
  t.ok(lab.rtA().session.slots.current!.n >= first + REKEYS, `at least ${REKEYS} rekeys while the flows ran`);
  t.equal(lab.rtA().stats.authFailures + lab.rtB().stats.authFailures, 0, 'zero authentication failures');
  t.equal(lab.rtA().stats.carrierAborts + lab.rtB().stats.carrierAborts, 0, 'zero carrier resets');
  const resets = [...lab.logA.lines, ...lab.logB.lines].filter((l) => l.event === 'carrier_reset' || l.event === 'carrier_aborted' || l.event === 'carrier_connect_failed');
  t.same(resets, [], 'no carrier reset, abort or connect failure logged');
  t.equal(lab.rtB().stats.replays, 0, 'no flow_id seen twice');
});
