// `qkdgw status` human form (issue 5 point 4): exact lines from a hand-built snapshot.
import t from 'tap';
import { clean, formatBytes, formatSeconds, renderStatus } from '../../../src/cli/status-table.js';
import type { GatewaySnapshot, PeerSnapshot, PoolSnapshot } from '../../../src/daemon/snapshot.js';

const peer = (over: Partial<PeerSnapshot>): PeerSnapshot => ({
  peer: 'gw-b',
  role: 'initiator',
  policy: 'default',
  qkdPolicy: 'required',
  state: 'up',
  controlUp: true,
  epoch: 7,
  epochAgeSec: 42.4,
  mode: 'qkd',
  suite: 1,
  keyIds: ['0b4f6a9e-1111-4c3b-9d2e-000000000001'],
  handshakeInFlight: false,
  rekeysByReason: { time: 5, records: 1 },
  handshakeFailuresByReason: { timeout: 2 },
  epochSwitches: 7,
  recordsSealed: 1204,
  bytesSealed: 4 * 2 ** 20,
  recordsOpened: 1180,
  bytesOpened: 1536,
  authFailures: 0,
  replayDrops: 3,
  flowsOpen: 2,
  carriersOpened: 9,
  events: {},
  ...over,
});

const pool = (over: Partial<PoolSnapshot>): PoolSnapshot => ({
  peerSaeId: 'gw-b',
  stock: 6,
  target: 8,
  kmeStoredKeyCount: 950,
  consumptionPerSec: 0.05,
  supplyPerSec: 1,
  forecastPoolDrySec: 120,
  forecastKmeDrySec: null,
  consecutiveGoodChecks: 4,
  lastStatusAt: 1000,
  lastError: null,
  forecastLow: false,
  refillInFlight: false,
  taken: 10,
  fetched: 16,
  discarded: 0,
  consecutiveStatusFailures: 0,
  consecutiveRefillFailures: 0,
  ...over,
});

const snap = (over: Partial<GatewaySnapshot> = {}): GatewaySnapshot => ({
  identity: 'gw-a',
  configFile: '/etc/qkdgw/gw-a.yaml',
  pid: 4242,
  uptimeSec: 3 * 3600 + 20 * 60,
  backend: 'native',
  kme: {
    url: 'https://kme-a.example:8443/api/v1',
    calls: { byOp: {}, byHttpStatus: {} },
    pools: [
      pool({}),
      pool({
        peerSaeId: 'gw-c',
        stock: 0,
        kmeStoredKeyCount: 3,
        consumptionPerSec: 1.5,
        forecastPoolDrySec: 0,
        forecastKmeDrySec: 2,
        forecastLow: true,
        lastError: { op: 'enc_keys', code: 'QKDGW_E_KMS_EXHAUSTED', message: 'KME has no keys for gw-c', at: 5000 },
      }),
      pool({ peerSaeId: 'gw-d', kmeStoredKeyCount: null, consumptionPerSec: 0, forecastPoolDrySec: null, forecastKmeDrySec: null, stock: 0 }),
    ],
  },
  peers: [
    peer({}),
    peer({
      peer: 'gw-c',
      state: 'hold',
      mode: 'degraded',
      suite: 2,
      epoch: 12,
      epochAgeSec: 4000,
      keyIds: [],
      rekeysByReason: {},
      handshakeFailuresByReason: { kme: 4, timeout: 1 },
      recordsSealed: 0,
      bytesSealed: 0,
      recordsOpened: 0,
      bytesOpened: 0,
      authFailures: 1,
      replayDrops: 0,
      flowsOpen: 0,
    }),
    peer({ peer: 'gw-d', role: 'responder', qkdPolicy: 'preferred', state: 'down', controlUp: false, epoch: null, epochAgeSec: null, mode: 'none', suite: null, rekeysByReason: {}, handshakeFailuresByReason: {}, recordsSealed: 0, bytesSealed: 0, recordsOpened: 0, bytesOpened: 0, replayDrops: 0, flowsOpen: 0 }),
  ],
  notReady: ['gw-c'],
  reloads: { ok: 2, failed: 1, last: { at: '2025-03-01T10:00:00.000Z', ok: false, detail: 'kme.ca: no such file' } },
  ...over,
});

t.test('status table: header, one row per peer, one per key pool, readiness (exact lines)', async (t) => {
  t.same(renderStatus(snap()).split('\n'), [
    'gateway  gw-a (pid 4242)',
    'uptime   3.3 h',
    'backend  native',
    'config   /etc/qkdgw/gw-a.yaml',
    'KME      https://kme-a.example:8443/api/v1',
    'reloads  2 ok, 1 failed; last 2025-03-01T10:00:00.000Z failed: kme.ca: no such file',
    '',
    'PEER  ROLE       STATE  MODE      EPOCH  EPOCH AGE  SUITE               FLOWS              SEALED              OPENED  REKEYS  HS FAILED  AUTH FAILED  REPLAY DROPS',
    'gw-b  initiator  up     qkd           7       42 s  AES-256-GCM             2  1204 rec / 4.0 MiB  1180 rec / 1.5 KiB       6          2            0             3',
    'gw-c  initiator  hold   degraded     12   66.7 min  XChaCha20-Poly1305      0         0 rec / 0 B         0 rec / 0 B       0          5            1             0',
    'gw-d  responder  down   none          -          -  -                       0         0 rec / 0 B         0 rec / 0 B       0          0            0             0',
    '',
    'KEY POOL  STOCK/TARGET  KME STORED  CONSUMPTION  POOL DRY IN  KME DRY IN  FORECAST LOW  LAST ERROR',
    'gw-b               6/8         950       0.05/s      2.0 min       never  no            -',
    'gw-c               0/8           3       1.50/s        0.0 s       2.0 s  yes           enc_keys: QKDGW_E_KMS_EXHAUSTED: KME has no keys for gw-c',
    'gw-d               0/8           ?       0.00/s        never           ?  no            -',
    '',
    'not ready: peers gw-c (not up, or not in qkd mode under qkd: required)',
    '',
  ]);
});

t.test('status table: ready, no pools (responder), no reload yet, backend not selected', async (t) => {
  const out = renderStatus(
    snap({
      uptimeSec: 5.25,
      backend: null,
      kme: { url: 'https://kme-b.example/api/v1', calls: { byOp: {}, byHttpStatus: {} }, pools: [] },
      peers: [peer({ peer: 'gw-a', role: 'responder', epoch: 1, epochAgeSec: 0.4, rekeysByReason: {}, handshakeFailuresByReason: {}, replayDrops: 0 })],
      notReady: [],
      reloads: { ok: 0, failed: 0, last: null },
    }),
  );
  t.same(out.split('\n'), [
    'gateway  gw-a (pid 4242)',
    'uptime   5.3 s',
    'backend  - (not selected)',
    'config   /etc/qkdgw/gw-a.yaml',
    'KME      https://kme-b.example/api/v1',
    'reloads  0 ok, 0 failed',
    '',
    'PEER  ROLE       STATE  MODE  EPOCH  EPOCH AGE  SUITE        FLOWS              SEALED              OPENED  REKEYS  HS FAILED  AUTH FAILED  REPLAY DROPS',
    'gw-a  responder  up     qkd       1      0.4 s  AES-256-GCM      2  1204 rec / 4.0 MiB  1180 rec / 1.5 KiB       0          0            0             0',
    '',
    'key pools: none (this gateway initiates to no peer)',
    '',
    'ready: yes',
    '',
  ]);
  t.notMatch(out, / \n/, 'no trailing spaces');
});

t.test('no peers configured', async (t) => {
  t.match(renderStatus(snap({ peers: [], notReady: [] })), /\n\npeers: none\n\n/);
});

t.test('text from the daemon cannot drive the terminal: control characters escaped', async (t) => {
  const evil = '\u001b]0;pwned\u0007\u001b[2J';
  const out = renderStatus(
    snap({
      peers: [peer({ peer: `gw-\u202eb` })],
      notReady: [],
      kme: { url: 'https://k/api/v1', calls: { byOp: {}, byHttpStatus: {} }, pools: [pool({ lastError: { op: 'status', code: 'X', message: `bad${evil}\nline`, at: 1 } })] },
    }),
  );
  t.notMatch(out, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/, 'no control characters but newlines');
  t.match(out, 'status: X: bad\\x1b]0;pwned\\x07\\x1b[2J\\x0aline');
  t.match(out, 'gw-\\u202eb');
  t.equal(clean('plain text'), 'plain text');
});

t.test('units: seconds and bytes', async (t) => {
  const secs: Array<[number | null, string]> = [
    [null, '-'],
    [0, '0.0 s'],
    [9.94, '9.9 s'],
    [10, '10 s'],
    [119.4, '119 s'],
    [120, '2.0 min'],
    [7199, '120.0 min'],
    [7200, '2.0 h'],
    [172_799, '48.0 h'],
    [172_800, '2.0 d'],
    [Infinity, '-'],
  ];
  for (const [v, want] of secs) t.equal(formatSeconds(v), want, `${v} s`);
  const bytes: Array<[number, string]> = [
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [2 ** 20 - 1, '1.0 MiB'],
    [4 * 2 ** 20, '4.0 MiB'],
    [3 * 2 ** 30, '3.0 GiB'],
    [2 ** 40, '1.0 TiB'],
    [2 ** 60, '1024.0 PiB'],
  ];
  for (const [v, want] of bytes) t.equal(formatBytes(v), want, `${v} B`);
});

t.test('a long KME error message is cut in the table (whole in --json)', async (t) => {
  const long = 'x'.repeat(400);
  const out = renderStatus(snap({ kme: { url: 'https://kme', calls: { byOp: {}, byHttpStatus: {} }, pools: [pool({ lastError: { op: 'enc_keys', code: 'QKDGW_E_KMS_UNAVAILABLE', message: long, at: 1 } })] } }));
  const row = out.split('\n').find((l) => l.includes('QKDGW_E_KMS_UNAVAILABLE'))!;
  t.ok(row.endsWith('...'), 'cut, marked with ...');
  t.notOk(row.includes(long), 'the 400 characters are not all there');
});
