/**
 * Pure parts of the QKD key pool: consumption and supply estimators, dry-out forecasts
 * (src/kms/forecast.ts) and the low-water alarm with hysteresis (src/kms/threshold.ts).
 * Table tests; times are plain numbers (ms).
 */
import t from 'tap';
import { EventRate, SupplyEstimator, kmeDrySec, poolDrySec } from '../../../src/kms/forecast.js';
import { LowWatermark } from '../../../src/kms/threshold.js';

t.test('EventRate: events in the window divided by the observed span (floored at minSpanMs)', async (t) => {
  // window 300 s, min span 60 s, observation since t=0
  const rows: Array<{ name: string; events: number[]; now: number; want: number }> = [
    { name: 'no events', events: [], now: 100_000, want: 0 },
    { name: 'one take 2 s after start: divided by the 60 s floor, not 2 s', events: [2_000], now: 2_000, want: 1 / 60 },
    { name: 'three takes in the first 120 s', events: [10_000, 50_000, 100_000], now: 120_000, want: 3 / 120 },
    { name: 'steady 1 per 120 s, window full', events: [120_000, 240_000, 360_000, 480_000, 600_000], now: 600_000, want: 3 / 300 },
    { name: 'event exactly windowMs old is out', events: [0, 300_000], now: 300_000, want: 1 / 300 },
    { name: 'all events older than the window', events: [1_000, 2_000], now: 1_000_000, want: 0 },
  ];
  for (const r of rows) {
    const e = new EventRate({ windowMs: 300_000, minSpanMs: 60_000, since: 0 });
    for (const at of r.events) e.add(at);
    t.ok(Math.abs(e.perSec(r.now) - r.want) < 1e-12, `${r.name}: ${e.perSec(r.now)} ~ ${r.want}`);
  }
  const e = new EventRate({ windowMs: 10_000, minSpanMs: 1_000, since: 0 });
  e.add(5_000, 4);
  t.equal(e.count(5_000), 4, 'n > 1 per add');
  t.equal(e.perSec(5_000), 4 / 5);
  t.throws(() => new EventRate({ windowMs: 0, minSpanMs: 1, since: 0 }), RangeError);
});

t.test('SupplyEstimator: growth of stored + fetched per second, clamped, null until two readings', async (t) => {
  const rows: Array<{ name: string; samples: Array<[number, number, number]>; want: number | null }> = [
    { name: 'no reading', samples: [], want: null },
    { name: 'one reading', samples: [[0, 10, 0]], want: null },
    { name: 'two readings at the same time', samples: [[5, 10, 0], [5, 11, 0]], want: null },
    { name: 'store grows 1 key/s, nothing fetched', samples: [[0, 10, 0], [10_000, 20, 0]], want: 1 },
    { name: 'store flat while we fetched 10 in 10 s: the KME made 1 key/s', samples: [[0, 10, 0], [10_000, 10, 10]], want: 1 },
    { name: 'store shrinks by what we fetched: supply 0', samples: [[0, 10, 0], [10_000, 5, 5]], want: 0 },
    { name: 'store shrinks more than we fetched (expiry): clamped at 0', samples: [[0, 10, 0], [10_000, 2, 5]], want: 0 },
    { name: 'endpoints of the window, middle ignored', samples: [[0, 0, 0], [10_000, 100, 0], [20_000, 10, 0]], want: 0.5 },
  ];
  for (const r of rows) {
    const s = new SupplyEstimator({ windowMs: 300_000 });
    for (const [at, stored, fetched] of r.samples) s.add({ at, stored, fetched });
    t.equal(s.perSec(), r.want, r.name);
  }
  // readings older than the window are dropped, but the last two always stay
  const s = new SupplyEstimator({ windowMs: 60_000 });
  s.add({ at: 0, stored: 0, fetched: 0 });
  s.add({ at: 30_000, stored: 30, fetched: 0 });
  s.add({ at: 100_000, stored: 30, fetched: 0 }); // t=0 is out; 30 s..100 s: no growth
  t.equal(s.perSec(), 0);
  s.add({ at: 1_000_000, stored: 930, fetched: 0 }); // only the last two remain
  t.equal(s.perSec(), 1000 * 900 / 900_000);
});

t.test('forecasts: pool dry = stock / consumption; KME dry = stored / (consumption - supply)', async (t) => {
  const pool: Array<[number, number, number | null]> = [
    [4, 0, null],
    [4, 1 / 120, 480],
    [0, 0.5, 0],
    [10, 2, 5],
  ];
  for (const [stock, c, want] of pool) t.equal(poolDrySec(stock, c), want, `pool ${stock} @ ${c}/s`);
  const kme: Array<[number | null, number, number | null, number | null, string]> = [
    [100, 1, 0, 100, 'no supply'],
    [100, 1, 0.5, 200, 'net 0.5/s'],
    [100, 1, 1, null, 'supply = consumption: never'],
    [100, 0.5, 1, null, 'supply > consumption: never'],
    [100, 1, null, 100, 'unknown supply counts as 0'],
    [0, 1, 0, 0, 'already empty'],
    [null, 1, 0, null, 'no status yet'],
    [100, 0, null, null, 'no consumption'],
  ];
  for (const [stored, c, s, want, name] of kme) t.equal(kmeDrySec(stored, c, s), want, name);
});

t.test('LowWatermark: reports crossings only, with hysteresis', async (t) => {
  const w = new LowWatermark({ lowBelow: 240, okAtOrAbove: 300 });
  const seq: Array<[number | null, 'low' | 'ok' | null]> = [
    [null, null], // never dry, already ok
    [500, null],
    [239, 'low'],
    [100, null], // still low: no second event
    [260, null], // above low but below ok: hysteresis holds
    [239, null],
    [300, 'ok'],
    [299, null], // not below 240
    [10, 'low'],
    [null, 'ok'], // "never runs dry" clears it
  ];
  for (const [v, want] of seq) t.equal(w.update(v), want, `value ${v}`);
  t.equal(w.isLow, false);
  t.throws(() => new LowWatermark({ lowBelow: 10, okAtOrAbove: 5 }), RangeError);
});
