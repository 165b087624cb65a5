// /readyz (second breaker): a peer that cannot carry traffic blocks readiness whatever its
// qkd policy; `required` also needs QKD mode; a stopping gateway is not ready.
import t from 'tap';
import { request } from 'node:http';
import { notReadyPeers, type GatewaySnapshot, type PeerSnapshot } from '../../../src/daemon/snapshot.js';
import { startMetricsServer } from '../../../src/daemon/metrics-server.js';
import { MemoryLogger } from '../../../src/util/logger.js';

const peer = (peer: string, qkdPolicy: PeerSnapshot['qkdPolicy'], state: PeerSnapshot['state'], mode: PeerSnapshot['mode']) => ({ peer, qkdPolicy, state, mode }) as PeerSnapshot;

t.test('notReadyPeers table', async (t) => {
  const cases: Array<[PeerSnapshot, boolean]> = [
    [peer('a', 'required', 'up', 'qkd'), true],
    [peer('b', 'required', 'up', 'degraded'), false],
    [peer('c', 'required', 'hold', 'qkd'), false],
    [peer('d', 'preferred', 'up', 'degraded'), true],
    [peer('e', 'preferred', 'hold', 'none'), false],
    [peer('f', 'preferred', 'down', 'none'), false],
    [peer('g', 'off', 'up', 'degraded'), true],
  ];
  for (const [p, ready] of cases) t.equal(notReadyPeers([p]).length === 0, ready, `${p.qkdPolicy} ${p.state} ${p.mode}: ${ready ? 'ready' : 'not ready'}`);
});

t.test('/readyz answers 503 "stopping" once a stop began', async (t) => {
  const snap = { peers: [], notReady: [], stopping: false, kme: { url: 'x', calls: { byOp: {}, byHttpStatus: {} }, pools: [] }, reloads: { ok: 0, failed: 0, last: null }, identity: 'gw-a', configFile: '/x', pid: 1, uptimeSec: 1, backend: 'node' } as GatewaySnapshot;
  const srv = await startMetricsServer({ source: { snapshot: () => snap, onKmeCall: () => () => undefined }, host: '127.0.0.1', port: 0, logger: new MemoryLogger(), processMetrics: false });
  t.teardown(() => srv.close());
  const get = (): Promise<[number, string]> =>
    new Promise((resolve, reject) => {
      const r = request({ host: '127.0.0.1', port: srv.port, path: '/readyz', agent: false }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve([res.statusCode ?? 0, b]));
      });
      r.on('error', reject);
      r.end();
    });
  t.same(await get(), [200, 'ready\n']);
  snap.stopping = true;
  t.same(await get(), [503, 'not ready: stopping\n']);
});
