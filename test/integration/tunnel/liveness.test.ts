// BC-31 / protocol.md s5.1 Liveness: KEEPALIVE after 10 s with nothing sent; a carrier is
// dead after 30 s with nothing received. A carrier whose path goes silent (no FIN, no RST)
// is declared dead on both gateways, which reset their local sockets; an idle but healthy
// carrier lives on. Protocol time runs 10x faster here (FastClock), sockets are real.
import t, { type Test } from 'tap';
import { startLab, dial, collect, until, FastClock, type Lab } from '../../helpers/lab.js';
import type { Socket } from 'node:net';

const FACTOR = 10;

async function echo(s: Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    s.once('data', (c: Buffer) => resolve(c.toString()));
    s.write(text);
  });
}

async function openFlow(t: Test, lab: Lab): Promise<{ s: Socket; out: ReturnType<typeof collect>; target: number; conn: number }> {
  const target = lab.targets.length;
  const conn = lab.proxy!.conns.length;
  const s = await dial(lab.servicePort);
  t.equal(await echo(s, 'ping'), 'ping', 'the flow works');
  const out = collect(s);
  return { s, out, target, conn };
}

t.test('BC-31 carrier liveness (protocol time x10)', async (t) => {
  const clock = new FastClock(FACTOR);
  const lab = await startLab(t, { proxy: true, clock });
  await lab.ready();

  await t.test('an idle but healthy carrier outlives dead_after (KEEPALIVE flows)', async (t) => {
    const f = await openFlow(t, lab);
    const from = clock.now();
    // Idle for 40 protocol seconds (dead_after is 30): this wait is the idleness under test.
    await new Promise((r) => setTimeout(r, 40_000 / FACTOR + 50));
    t.ok(clock.now() - from >= 40_000, 'more than dead_after passed in protocol time');
    t.equal(await echo(f.s, 'still here'), 'still here', 'the carrier still carries data');
    const kinds = lab.proxy!.conns[f.conn].records.map((r) => r.type);
    t.ok(kinds.includes(0x06), 'gw-a sent KEEPALIVE records while idle');
    f.s.end();
    t.equal((await f.out).how, 'eof');
  });

  await t.test('BC-31 a silent path: both gateways declare the carrier dead and reset their local sockets', async (t) => {
    const f = await openFlow(t, lab);
    const from = clock.now();
    lab.proxy!.conns[f.conn].blackhole();
    const c = await f.out;
    await until(() => lab.targets[f.target].ended !== null, 60_000 / FACTOR, 'target end');
    const took = clock.now() - from;
    t.equal(c.how, 'reset', 'client sees a reset');
    t.equal(lab.targets[f.target].ended!.how, 'reset', 'target sees a reset');
    t.ok(took >= 29_000 && took < 45_000, `declared dead after ${(took / 1000).toFixed(1)} protocol seconds (dead_after 30 s)`);
    for (const log of [lab.logA, lab.logB]) {
      t.equal(log.lines.filter((l) => l.event === 'carrier_reset' && l.reason === 'liveness timeout').length, 1, 'one liveness timeout logged per gateway');
    }
    t.ok(lab.rtA().controlUp && lab.rtB().controlUp, 'the control channel (not on the silent path) stays up');
  });
});

t.test('BC-31 the policy keepalive / dead_after reach the carriers', async (t) => {
  const clock = new FastClock(FACTOR);
  const lab = await startLab(t, { proxy: true, clock, policy: { keepalive: '1s', dead_after: '3s' } });
  await lab.ready();
  const f = await openFlow(t, lab);
  lab.proxy!.conns[f.conn].blackhole();
  // dead_after 3 s; the hardcoded 30 s would take 30 protocol seconds.
  let timer: NodeJS.Timeout | undefined;
  const winner = await Promise.race([f.out, new Promise<null>((r) => (timer = setTimeout(() => r(null), 15_000 / FACTOR)))]);
  clearTimeout(timer);
  t.ok(winner !== null && winner.how === 'reset', 'client reset within 15 protocol seconds of the path going silent (dead_after 3 s)');
  f.s.destroy();
});
