/**
 * The systemd watchdog (src/daemon/watchdog.ts): WATCHDOG_USEC / WATCHDOG_PID parsing
 * (sd_watchdog_enabled(3)), pings every half interval only while healthy, and BC-38 (c):
 * a synchronously blocked event loop sends no ping and its first tick afterwards
 * withholds one. Time is driven with ManualClock, except in the BC-38 (c) test, which
 * blocks the real loop.
 */
import t from 'tap';
import { readWatchdogEnv, Watchdog, type WatchdogOptions } from '../../../src/daemon/watchdog.js';
import { ManualClock, type Clock } from '../../../src/util/clock.js';
import { MemoryLogger } from '../../../src/util/logger.js';

t.test('readWatchdogEnv: WATCHDOG_USEC and WATCHDOG_PID as sd_watchdog_enabled(3) reads them', async (t) => {
  t.same(readWatchdogEnv({ WATCHDOG_USEC: '20000000' }, 42), { enabled: true, usec: 20_000_000 });
  t.same(readWatchdogEnv({ WATCHDOG_USEC: '4000000', WATCHDOG_PID: '42' }, 42), { enabled: true, usec: 4_000_000 }, 'WATCHDOG_PID naming this process');
  const off = (env: NodeJS.ProcessEnv) => readWatchdogEnv(env, 42);
  t.match(off({}), { enabled: false, invalid: false, why: /unset/ }, 'unset: disabled, nothing to report');
  t.match(off({ WATCHDOG_USEC: '' }), { enabled: false, invalid: false });
  t.match(off({ WATCHDOG_USEC: '4000000', WATCHDOG_PID: '43' }), { enabled: false, invalid: false, why: /another process/ }, 'inherited from a parent: not ours to feed');
  for (const bad of ['0', '-5', '20s', '1e6', '0x10', ' 100', '4000000.5', '99999999999999999']) {
    t.match(off({ WATCHDOG_USEC: bad }), { enabled: false, invalid: true, why: /not a positive number of microseconds/ }, `WATCHDOG_USEC=${JSON.stringify(bad)} refused`);
  }
  t.match(off({ WATCHDOG_USEC: '4000000', WATCHDOG_PID: 'self' }), { enabled: false, invalid: true, why: /not a process id/ });
});

function rig(o: Partial<WatchdogOptions> & { clock?: Clock } = {}) {
  const clock = o.clock ?? new ManualClock(1_000);
  const log = new MemoryLogger();
  const pings: number[] = [];
  let why: string | null = null;
  const wd = new Watchdog({
    usec: 2_000_000,
    feed: () => {
      pings.push(clock.now());
    },
    health: () => why,
    logger: log,
    clock,
    ...o,
  });
  return { wd, clock, log, pings, setHealth: (w: string | null) => (why = w) };
}

t.test('pings at once, then every half interval (WATCHDOG_USEC 2 s -> 1 s)', async (t) => {
  const { wd, clock, pings } = rig();
  const c = clock as ManualClock;
  t.equal(wd.periodMs, 1_000);
  t.equal(wd.maxLagMs, 1_000, 'lag bound defaults to the period');
  wd.start();
  wd.start();
  t.same(pings, [1_000], 'first ping on start (start is idempotent)');
  c.advance(999);
  t.equal(pings.length, 1, 'nothing before the period');
  c.advance(1);
  c.advance(3_000);
  t.same(pings, [1_000, 2_000, 3_000, 4_000, 5_000]);
  t.equal(wd.stats.fed, 5);
  wd.stop();
  t.equal(wd.running, false);
  t.equal(c.pending, 0, 'no timer left after stop');
  c.advance(10_000);
  t.equal(pings.length, 5, 'no ping after stop');
});

t.test('unhealthy gateway: pings withheld (warned once), resumed when healthy again', async (t) => {
  const { wd, clock, pings, log, setHealth } = rig();
  const c = clock as ManualClock;
  wd.start();
  setHealth('peer gw-b: runtime closed');
  c.advance(5_000);
  t.same(pings, [1_000], 'no ping while unhealthy');
  t.equal(wd.stats.withheld, 5);
  t.equal(wd.stats.lastWithheld, 'peer gw-b: runtime closed');
  const warned = log.lines.filter((l) => l.event === 'watchdog_withheld');
  t.equal(warned.length, 1, 'one warning for the whole stretch, not one per period');
  t.equal(warned[0]!.why, 'peer gw-b: runtime closed');
  setHealth(null);
  c.advance(1_000);
  t.same(pings, [1_000, 7_000], 'next tick pings again');
  t.equal(log.lines.filter((l) => l.event === 'watchdog_resumed').length, 1);
  t.equal(wd.stats.lastWithheld, null);
  wd.stop();
});

t.test('a health check that throws counts as unhealthy', async (t) => {
  const { wd, clock, pings } = rig({
    health: () => {
      throw new Error('pool map corrupted');
    },
  });
  wd.start();
  (clock as ManualClock).advance(2_000);
  t.same(pings, []);
  t.match(wd.stats.lastWithheld, /health check threw: pool map corrupted/);
  wd.stop();
});

t.test('a late timer (event loop lag above the period) withholds that ping', async (t) => {
  // ManualClock fires timers exactly on time; `lag` shifts now() to model a late callback.
  class LateClock extends ManualClock {
    lag = 0;
    override now(): number {
      return super.now() + this.lag;
    }
  }
  const clock = new LateClock(0);
  const { wd, pings } = rig({ clock });
  wd.start();
  clock.lag = 1_500; // the next tick runs 1.5 s after it was due
  clock.advance(1_000);
  t.same(pings, [0], 'late tick: no ping');
  t.match(wd.stats.lastWithheld, /event loop lag 1500 ms > 1000 ms/);
  t.equal(wd.stats.lastLagMs, 1_500);
  clock.advance(1_000);
  t.equal(pings.length, 2, 'on-time tick afterwards pings');
  t.equal(wd.stats.lastLagMs, 0);
  wd.stop();
});

t.test('a failed send is counted as failed, not fed', async (t) => {
  let mode: 'false' | 'throw' = 'false';
  const { wd, clock, log } = rig({
    feed: () => {
      if (mode === 'throw') throw new Error('EAGAIN');
      return false;
    },
  });
  wd.start();
  mode = 'throw';
  (clock as ManualClock).advance(1_000);
  t.same([wd.stats.fed, wd.stats.failed], [0, 2]);
  t.match(log.lines.find((l) => l.event === 'watchdog_feed_failed'), { err: 'EAGAIN' });
  wd.stop();
});

t.test('the interval is checked', async (t) => {
  for (const usec of [0, -1, 1.5, Number.NaN]) t.throws(() => rig({ usec }), RangeError, `usec ${usec}`);
  t.equal(rig({ usec: 1_000 }).wd.periodMs, 1, 'sub-millisecond periods round up to 1 ms');
});

t.test('BC-38 (c) a synchronously blocked event loop sends no ping; the first tick after withholds', async (t) => {
  // The real loop and real timers (kept referenced so the test process waits for them).
  const realClock: Clock = {
    now: () => performance.now(),
    setTimer(ms, fn) {
      const h = setTimeout(fn, ms);
      return () => clearTimeout(h);
    },
  };
  const pings: number[] = [];
  const log = new MemoryLogger();
  let wake: (() => void) | null = null;
  let want = 0;
  const wd = new Watchdog({
    usec: 200_000, // WatchdogSec=200ms: pings every 100 ms
    feed: () => {
      pings.push(performance.now());
      if (wake && pings.length >= want) wake();
    },
    health: () => null,
    logger: log,
    clock: realClock,
  });
  const pingsReach = (n: number) =>
    new Promise<void>((resolve) => {
      want = n;
      wake = resolve;
      if (pings.length >= n) resolve();
    });
  t.teardown(() => wd.stop());
  wd.start();
  await pingsReach(3);
  // The daemon-side hazard: a synchronous stall (a runaway loop, a blocking call) of 3 watchdog intervals.
  const blockStart = performance.now();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600);
  const blockEnd = performance.now();
  const withheldBefore = wd.stats.withheld;
  const n = pings.length;
  await pingsReach(n + 2);
  t.notOk(
    pings.some((p) => p > blockStart && p < blockEnd),
    'no ping while the loop was blocked: pings come from the main loop only',
  );
  t.ok(wd.stats.withheld > withheldBefore, 'the tick that ran after the block withheld its ping');
  t.ok(
    log.lines.some((l) => l.event === 'watchdog_withheld' && /event loop lag \d+ ms > 100 ms/.test(String(l.why)) && Number(l.lag_ms) >= 400),
    'and said why: the lag it measured itself',
  );
  t.ok(pings[n]! - blockEnd >= 0, 'pings resumed after the block');
});
