/**
 * The systemd notifier (src/daemon/systemd.ts) over a recording fake of the addon's
 * sdNotify: no-op without NOTIFY_SOCKET, one clear warning without the addon (BC-38),
 * the datagrams' text, and the STATUS line / health check the daemon derives from a
 * gateway. The real addon and a real AF_UNIX socket: test/integration/systemd/.
 */
import t from 'tap';
import { gatewayHealth, gatewayStatusLine, statusValue, SystemdNotifier, type GatewayView } from '../../../src/daemon/systemd.js';
import { NODE_BACKEND, type CryptoBackend } from '../../../src/crypto/backend.js';
import type { NativeBinding } from '../../../src/crypto/native/binding.js';
import type { NativeStatus } from '../../../src/crypto/native/loader.js';
import { MemoryLogger } from '../../../src/util/logger.js';

function fake(send: (s: string) => boolean = () => true) {
  const sent: string[] = [];
  let loads = 0;
  const load = (): NativeStatus => {
    loads++;
    const binding = {
      sdNotify: (s: string) => {
        sent.push(s);
        return send(s);
      },
    } as unknown as NativeBinding;
    return { available: true, binding, path: '/fake/qkdgw_native.node' };
  };
  return { sent, load, loads: () => loads };
}

t.test('BC-38 NOTIFY_SOCKET unset: every call is a no-op and the addon is not loaded', async (t) => {
  const f = fake();
  const log = new MemoryLogger();
  for (const env of [{}, { NOTIFY_SOCKET: '' }]) {
    const n = new SystemdNotifier({ env, logger: log, load: f.load });
    t.equal(n.enabled, false);
    t.equal(n.socket, null);
    t.equal(n.ready('x'), false);
    t.equal(n.watchdog(), false);
  }
  t.equal(f.loads(), 0, 'addon never loaded');
  t.same(log.lines, [], 'nothing logged');
});

t.test('BC-38 NOTIFY_SOCKET set but no addon: one clear warning, then silence', async (t) => {
  const cases: Array<[string, NodeJS.ProcessEnv, ((e: NodeJS.ProcessEnv) => NativeStatus) | undefined, RegExp]> = [
    ['addon missing', { NOTIFY_SOCKET: '/run/systemd/notify' }, () => ({ available: false, reason: 'addon not built (x is missing)', path: 'x' }), /addon not built/],
    ['QKDGW_NATIVE=0', { NOTIFY_SOCKET: '@n', QKDGW_NATIVE: '0' }, undefined, /disabled by QKDGW_NATIVE=0/],
    ['bad QKDGW_NATIVE (loader throws)', { NOTIFY_SOCKET: '@n', QKDGW_NATIVE: 'no' }, undefined, /QKDGW_NATIVE="no" is not understood/],
  ];
  for (const [what, env, load, reason] of cases) {
    const log = new MemoryLogger();
    const n = new SystemdNotifier({ env, logger: log, load });
    t.equal(n.enabled, false, `${what}: disabled`);
    t.equal(n.ready('up'), false);
    t.equal(n.watchdog(), false);
    t.equal(n.stopping(), false);
    t.equal(log.lines.length, 1, `${what}: exactly one log line`);
    t.match(log.lines[0], { level: 'warn', event: 'sd_notify_unavailable', notify_socket: env.NOTIFY_SOCKET, reason }, `${what}: names the socket and the reason`);
    t.match(String(log.lines[0]!.msg), /Type=notify unit times out at start/, `${what}: says what it costs`);
  }
});

t.test('the datagrams: READY, RELOADING (+MONOTONIC_USEC), STOPPING, STATUS, WATCHDOG', async (t) => {
  const f = fake();
  const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: '@qkdgw' }, logger: new MemoryLogger(), load: f.load });
  t.equal(n.enabled, true);
  t.equal(n.socket, '@qkdgw');
  t.equal(n.ready('peers up 1/1, degraded 0, key stock 4'), true);
  const before = process.hrtime.bigint() / 1000n;
  n.reloading();
  const after = process.hrtime.bigint() / 1000n;
  n.stopping();
  n.status('two\nlines\r\nhere');
  n.watchdog();
  t.equal(f.sent[0], 'READY=1\nSTATUS=peers up 1/1, degraded 0, key stock 4');
  const m = /^RELOADING=1\nMONOTONIC_USEC=(\d+)\nSTATUS=reloading configuration$/.exec(f.sent[1]!);
  t.ok(m, `RELOADING datagram: ${JSON.stringify(f.sent[1])}`);
  t.ok(BigInt(m![1]!) >= before && BigInt(m![1]!) <= after, 'MONOTONIC_USEC is CLOCK_MONOTONIC in microseconds');
  t.equal(f.sent[2], 'STOPPING=1\nSTATUS=stopping: draining flows, zeroizing keys');
  t.equal(f.sent[3], 'STATUS=two lines here', 'a STATUS value stays one assignment');
  t.equal(f.sent[4], 'WATCHDOG=1');
});

t.test('a failing send returns false, warns once per cause, never throws', async (t) => {
  const f = fake(() => {
    throw Object.assign(new Error('sd_notify: sendto(NOTIFY_SOCKET) failed: Connection refused'), { code: 'QKDGW_E_SD_NOTIFY' });
  });
  const log = new MemoryLogger();
  const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/run/x' }, logger: log, load: f.load });
  t.equal(n.watchdog(), false);
  t.equal(n.watchdog(), false);
  t.equal(n.ready('s'), false);
  t.same(
    log.lines.map((l) => [l.level, l.event, l.state]),
    [
      ['warn', 'sd_notify_failed', 'WATCHDOG'],
      ['debug', 'sd_notify_failed', 'WATCHDOG'],
      ['debug', 'sd_notify_failed', 'READY,STATUS'],
    ],
  );
  t.match(log.lines[0], { err: /Connection refused/, notify_socket: '/run/x' });
});

t.test('statusValue: one line of at most 512 bytes', async (t) => {
  t.equal(statusValue('  a\nb\0c  '), 'a b c');
  const long = statusValue('é'.repeat(400));
  t.ok(Buffer.byteLength(long) <= 512, `${Buffer.byteLength(long)} bytes`);
  t.match(long, /^é+\.\.\.$/, 'cut on a character boundary, marked');
});

type PeerView = GatewayView['peers'] extends ReadonlyMap<string, infer P> ? P : never;
const peer = (o: { up?: boolean; epoch?: boolean; degraded?: boolean; closed?: boolean } = {}): PeerView => ({
  controlUp: o.up ?? true,
  closed: o.closed ?? false,
  session: { slots: { current: (o.epoch ?? true) ? {} : null }, ladder: { mode: o.degraded ? 'degraded' : 'qkd' } },
});
const view = (peers: Record<string, PeerView>, stocks: number[] = [], backend: CryptoBackend | null = NODE_BACKEND): GatewayView => ({
  peers: new Map(Object.entries(peers)),
  pools: new Map(stocks.map((s, i) => [`p${i}`, { stats: () => ({ stock: s }) }])),
  crypto: backend ? { backend } : null,
});

t.test('STATUS line: peers up (control + epoch), degraded peers, key stock', async (t) => {
  t.equal(gatewayStatusLine(view({})), 'peers up 0/0, degraded 0, key stock 0');
  t.equal(
    gatewayStatusLine(view({ b: peer(), c: peer({ degraded: true }), d: peer({ up: false }), e: peer({ epoch: false }) }, [5, 3])),
    'peers up 2/4, degraded 1, key stock 8',
  );
});

t.test('health: key engine known answer, peer runtimes open', async (t) => {
  t.equal(gatewayHealth(view({ b: peer(), c: peer({ up: false, degraded: true }) })), null, 'a peer that is down or degraded is not a reason to restart');
  t.equal(gatewayHealth(view({ b: peer() }, [], null)), 'crypto backend not selected');
  t.equal(gatewayHealth(view({ b: peer({ closed: true }) })), 'peer b: runtime closed');
  let destroyed = 0;
  const broken: CryptoBackend = {
    name: 'native',
    description: 'broken',
    aes256gcm: (k) => {
      const a = NODE_BACKEND.aes256gcm(k);
      return Object.assign(Object.create(a) as typeof a, {
        seal: (n: Uint8Array, p: Uint8Array, aad: Uint8Array) => {
          const out = a.seal(n, p, aad);
          out[0]! ^= 1;
          return out;
        },
        destroy: () => {
          destroyed++;
          a.destroy();
        },
      });
    },
  };
  t.equal(gatewayHealth(view({}, [], broken)), 'AES-256-GCM backend native fails its known answer');
  t.equal(destroyed, 1, 'the probe context is destroyed');
});
