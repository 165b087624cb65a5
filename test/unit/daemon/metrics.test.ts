// Metrics and health endpoints (issue 5 point 4) against a fake MetricsSource with a
// hand-built GatewaySnapshot: exact exposition lines, one snapshot per scrape, removed
// peers/pools leave the output, unknown values are omitted, the KME latency histogram is
// fed by onKmeCall, and the HTTP surface (/metrics, /healthz, /readyz, HEAD, 404/405/400,
// 500 on a failing snapshot, prompt close with keep-alive clients).
import t from 'tap';
import { request, Agent } from 'node:http';
import { createServer } from 'node:net';
import { GatewayMetrics, KME_LATENCY_BUCKETS_SEC, type MetricsSource } from '../../../src/daemon/metrics.js';
import { startMetricsServer } from '../../../src/daemon/metrics-server.js';
import type { GatewaySnapshot, PeerSnapshot } from '../../../src/daemon/snapshot.js';
import type { KmeCallObservation } from '../../../src/kms/etsi014/client.js';
import type { KeyPoolStats } from '../../../src/kms/key-pool.js';
import { ErrorCodes, isQkdgwError } from '../../../src/errors.js';
import { MemoryLogger } from '../../../src/util/logger.js';

function peer(over: Partial<PeerSnapshot> = {}): PeerSnapshot {
  return {
    peer: 'gw-b',
    role: 'initiator',
    policy: 'default',
    qkdPolicy: 'required',
    state: 'up',
    controlUp: true,
    epoch: 7,
    epochAgeSec: 12.5,
    mode: 'qkd',
    suite: 1,
    keyIds: ['0b3c0f6e-1d1e-4a43-9c0a-1f2b3c4d5e6f'],
    handshakeInFlight: false,
    rekeysByReason: { time: 5, records: 1 },
    handshakeFailuresByReason: { key_unavailable: 2 },
    epochSwitches: 6,
    recordsSealed: 42,
    bytesSealed: 123456,
    recordsOpened: 40,
    bytesOpened: 120000,
    authFailures: 1,
    replayDrops: 3,
    flowsOpen: 2,
    carriersOpened: 9,
    events: {},
    ...over,
  };
}

function pool(over: Partial<KeyPoolStats> = {}): KeyPoolStats {
  return {
    peerSaeId: 'gw-b',
    stock: 3,
    target: 4,
    kmeStoredKeyCount: 950,
    consumptionPerSec: 0.5,
    supplyPerSec: 0.1,
    forecastPoolDrySec: 6,
    forecastKmeDrySec: 2375,
    consecutiveGoodChecks: 4,
    lastStatusAt: 1000,
    lastError: null,
    forecastLow: false,
    refillInFlight: false,
    taken: 11,
    fetched: 14,
    discarded: 0,
    consecutiveStatusFailures: 0,
    consecutiveRefillFailures: 0,
    ...over,
  };
}

function snapshot(): GatewaySnapshot {
  return {
    identity: 'gw-a',
    configFile: '/etc/qkdgw/gw-a.yaml',
    pid: 4242,
    uptimeSec: 3600,
    backend: 'native',
    kme: {
      url: 'https://kme-a.example:8443/api/v1',
      calls: { byOp: { enc_keys: { ok: 14, errors: { transient: 2, exhausted: 1 } }, status: { ok: 30, errors: {} } }, byHttpStatus: { '200': 44, '503': 3 } },
      pools: [pool()],
    },
    peers: [peer(), peer({ peer: 'gw-c', role: 'responder', qkdPolicy: 'preferred', state: 'hold', epoch: null, epochAgeSec: null, mode: 'none', rekeysByReason: {}, handshakeFailuresByReason: {}, recordsSealed: 0, bytesSealed: 0 })],
    notReady: [],
    reloads: { ok: 2, failed: 1, last: null },
  };
}

/** A MetricsSource whose snapshot the test edits; counts snapshot() calls. */
class FakeSource implements MetricsSource {
  snap: GatewaySnapshot = snapshot();
  calls = 0;
  fail: string | null = null;
  readonly listeners = new Set<(c: KmeCallObservation) => void>();
  snapshot(): GatewaySnapshot {
    this.calls++;
    if (this.fail) throw new Error(this.fail);
    return structuredClone(this.snap);
  }
  onKmeCall(fn: (c: KmeCallObservation) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  emit(c: KmeCallObservation): void {
    for (const fn of this.listeners) fn(c);
  }
}

const lines = (text: string): string[] => text.split('\n');
const has = (text: string, line: string): boolean => lines(text).includes(line);
const series = (text: string, name: string): string[] => lines(text).filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

t.test('per-peer series: exact lines, counters typed as counters, one-hot state and mode', async (t) => {
  const src = new FakeSource();
  const m = new GatewayMetrics({ source: src, processMetrics: false, version: '9.9.9' });
  const out = await m.render();
  for (const l of [
    '# TYPE qkdgw_peer_records_sealed_total counter',
    'qkdgw_peer_records_sealed_total{peer="gw-b",role="initiator"} 42',
    'qkdgw_peer_sealed_bytes_total{peer="gw-b",role="initiator"} 123456',
    'qkdgw_peer_records_opened_total{peer="gw-b",role="initiator"} 40',
    'qkdgw_peer_opened_bytes_total{peer="gw-b",role="initiator"} 120000',
    'qkdgw_peer_auth_failures_total{peer="gw-b",role="initiator"} 1',
    'qkdgw_peer_replay_drops_total{peer="gw-b",role="initiator"} 3',
    'qkdgw_peer_epoch_switches_total{peer="gw-b",role="initiator"} 6',
    'qkdgw_peer_flows_opened_total{peer="gw-b",role="initiator"} 9',
    '# TYPE qkdgw_peer_flows_open gauge',
    'qkdgw_peer_flows_open{peer="gw-b",role="initiator"} 2',
    'qkdgw_peer_rekeys_total{peer="gw-b",role="initiator",reason="time"} 5',
    'qkdgw_peer_rekeys_total{peer="gw-b",role="initiator",reason="records"} 1',
    'qkdgw_peer_handshake_failures_total{peer="gw-b",role="initiator",reason="key_unavailable"} 2',
    'qkdgw_peer_epoch{peer="gw-b",role="initiator"} 7',
    'qkdgw_peer_epoch_age_seconds{peer="gw-b",role="initiator"} 12.5',
    'qkdgw_peer_state{peer="gw-b",role="initiator",state="up"} 1',
    'qkdgw_peer_state{peer="gw-b",role="initiator",state="hold"} 0',
    'qkdgw_peer_state{peer="gw-b",role="initiator",state="down"} 0',
    'qkdgw_peer_mode{peer="gw-b",role="initiator",mode="qkd"} 1',
    'qkdgw_peer_mode{peer="gw-b",role="initiator",mode="degraded"} 0',
    'qkdgw_peer_mode{peer="gw-c",role="responder",mode="none"} 1',
    'qkdgw_peer_state{peer="gw-c",role="responder",state="hold"} 1',
    'qkdgw_peer_info{peer="gw-c",role="responder",policy="default",qkd_policy="preferred"} 1',
    'qkdgw_peer_ready{peer="gw-b",role="initiator"} 1',
    'qkdgw_peer_records_sealed_total{peer="gw-c",role="responder"} 0',
  ]) t.ok(has(out, l), l);
  t.same(series(out, 'qkdgw_peer_epoch'), ['qkdgw_peer_epoch{peer="gw-b",role="initiator"} 7'], 'no epoch series for a peer without an epoch');
  t.same(series(out, 'qkdgw_peer_epoch_age_seconds').length, 1, 'no epoch age for a peer without an epoch');
  t.notOk(out.includes('0b3c0f6e'), 'key_IDs are never labels');
  t.notOk(out.includes('nodejs_'), 'process metrics off');
  t.equal(src.calls, 1, 'one snapshot for the whole scrape');
  await m.render();
  t.equal(src.calls, 2, 'and one more for the next');
});

t.test('KME, pool and process series', async (t) => {
  const src = new FakeSource();
  const m = new GatewayMetrics({ source: src, processMetrics: false, version: '9.9.9' });
  const out = await m.render();
  for (const l of [
    'qkdgw_kme_info{kme="https://kme-a.example:8443/api/v1"} 1',
    '# TYPE qkdgw_kme_errors_total counter',
    'qkdgw_kme_errors_total{op="enc_keys",class="transient"} 2',
    'qkdgw_kme_errors_total{op="enc_keys",class="exhausted"} 1',
    'qkdgw_kme_http_responses_total{code="200"} 44',
    'qkdgw_kme_http_responses_total{code="503"} 3',
    'qkdgw_kme_stored_keys{peer="gw-b"} 950',
    'qkdgw_pool_keys{peer="gw-b"} 3',
    'qkdgw_pool_target_keys{peer="gw-b"} 4',
    'qkdgw_pool_forecast_dry_seconds{peer="gw-b"} 6',
    'qkdgw_kme_forecast_dry_seconds{peer="gw-b"} 2375',
    'qkdgw_pool_forecast_low{peer="gw-b"} 0',
    'qkdgw_pool_keys_taken_total{peer="gw-b"} 11',
    'qkdgw_pool_keys_fetched_total{peer="gw-b"} 14',
    'qkdgw_pool_keys_discarded_total{peer="gw-b"} 0',
    'qkdgw_crypto_backend_info{backend="native"} 1',
    'qkdgw_reloads_total{result="ok"} 2',
    'qkdgw_reloads_total{result="failed"} 1',
    'qkdgw_uptime_seconds 3600',
    'qkdgw_ready 1',
    `qkdgw_build_info{version="9.9.9",node_version="${process.version}"} 1`,
  ]) t.ok(has(out, l), l);
  t.same(series(out, 'qkdgw_kme_errors_total').length, 2, 'status had no errors: no error series for it');
});

t.test('null forecasts, stored count and backend are omitted, not written as 0', async (t) => {
  const src = new FakeSource();
  src.snap.kme.pools = [pool({ forecastPoolDrySec: null, forecastKmeDrySec: null, kmeStoredKeyCount: null })];
  src.snap.backend = null;
  const m = new GatewayMetrics({ source: src, processMetrics: false });
  const out = await m.render();
  t.same(series(out, 'qkdgw_pool_forecast_dry_seconds'), []);
  t.same(series(out, 'qkdgw_kme_forecast_dry_seconds'), []);
  t.same(series(out, 'qkdgw_kme_stored_keys'), []);
  t.same(series(out, 'qkdgw_crypto_backend_info'), []);
  t.ok(has(out, 'qkdgw_pool_keys{peer="gw-b"} 3'), 'the pool itself is still there');
  t.ok(has(out, '# TYPE qkdgw_pool_forecast_dry_seconds gauge'), 'the family is declared, only the series is absent');
});

t.test('a peer and its pool removed by a reload leave the output at the next scrape', async (t) => {
  const src = new FakeSource();
  const m = new GatewayMetrics({ source: src, processMetrics: false });
  const before = await m.render();
  t.ok(has(before, 'qkdgw_peer_flows_open{peer="gw-b",role="initiator"} 2'));
  src.snap.peers = src.snap.peers.filter((p) => p.peer !== 'gw-b');
  src.snap.kme.pools = [];
  const after = await m.render();
  t.notOk(after.includes('peer="gw-b"'), 'no series names gw-b any more');
  t.ok(has(after, 'qkdgw_peer_flows_open{peer="gw-c",role="responder"} 2'), 'gw-c still there');
  // A counter that went up between scrapes shows the new total, not a sum of scrapes.
  src.snap.peers[0].recordsSealed = 5;
  const again = await m.render();
  t.ok(has(again, 'qkdgw_peer_records_sealed_total{peer="gw-c",role="responder"} 5'));
  t.ok(has(await m.render(), 'qkdgw_peer_records_sealed_total{peer="gw-c",role="responder"} 5'), 'rendering twice adds nothing');
});

t.test('not-ready peers: qkdgw_ready 0 and qkdgw_peer_ready 0 for them', async (t) => {
  const src = new FakeSource();
  src.snap.notReady = ['gw-b'];
  const out = await new GatewayMetrics({ source: src, processMetrics: false }).render();
  t.ok(has(out, 'qkdgw_ready 0'));
  t.ok(has(out, 'qkdgw_peer_ready{peer="gw-b",role="initiator"} 0'));
  t.ok(has(out, 'qkdgw_peer_ready{peer="gw-c",role="responder"} 1'));
});

t.test('the KME latency histogram is fed live by onKmeCall, by op and outcome; close() unsubscribes', async (t) => {
  const src = new FakeSource();
  const m = new GatewayMetrics({ source: src, processMetrics: false });
  t.equal(KME_LATENCY_BUCKETS_SEC[0], 0.001);
  t.equal(KME_LATENCY_BUCKETS_SEC.at(-1), 10);
  let out = await m.render();
  t.ok(has(out, 'qkdgw_kme_request_duration_seconds_count{op="enc_keys",outcome="ok"} 0'), 'zeroed series before any call');
  // Binary fractions, so the _sum line is exact.
  src.emit({ op: 'enc_keys', durationSec: 0.00390625, httpStatus: 200, errorKind: null });
  src.emit({ op: 'enc_keys', durationSec: 0.03125, httpStatus: 200, errorKind: null });
  src.emit({ op: 'status', durationSec: 5.5, httpStatus: null, errorKind: 'transient' });
  out = await m.render();
  for (const l of [
    '# TYPE qkdgw_kme_request_duration_seconds histogram',
    'qkdgw_kme_request_duration_seconds_bucket{le="0.0025",op="enc_keys",outcome="ok"} 0',
    'qkdgw_kme_request_duration_seconds_bucket{le="0.005",op="enc_keys",outcome="ok"} 1',
    'qkdgw_kme_request_duration_seconds_bucket{le="0.05",op="enc_keys",outcome="ok"} 2',
    'qkdgw_kme_request_duration_seconds_bucket{le="+Inf",op="enc_keys",outcome="ok"} 2',
    'qkdgw_kme_request_duration_seconds_sum{op="enc_keys",outcome="ok"} 0.03515625',
    'qkdgw_kme_request_duration_seconds_count{op="enc_keys",outcome="ok"} 2',
    'qkdgw_kme_request_duration_seconds_bucket{le="5",op="status",outcome="error"} 0',
    'qkdgw_kme_request_duration_seconds_bucket{le="10",op="status",outcome="error"} 1',
    'qkdgw_kme_request_duration_seconds_count{op="status",outcome="error"} 1',
    'qkdgw_kme_request_duration_seconds_count{op="dec_keys",outcome="ok"} 0',
  ]) t.ok(has(out, l), l);
  m.close();
  t.equal(src.listeners.size, 0, 'unsubscribed');
  m.close();
});

t.test('process metrics (event-loop lag) with the qkdgw_ prefix, shared by every instance', async (t) => {
  const src = new FakeSource();
  const a = new GatewayMetrics({ source: src });
  const b = new GatewayMetrics({ source: src });
  const outA = await a.render();
  const outB = await b.render();
  for (const out of [outA, outB]) {
    t.ok(out.includes('# TYPE qkdgw_nodejs_eventloop_lag_seconds gauge'));
    t.ok(out.includes('# TYPE qkdgw_nodejs_eventloop_lag_p99_seconds gauge'));
    t.ok(out.includes('# TYPE qkdgw_process_cpu_seconds_total counter'));
    t.ok(has(out, 'qkdgw_peer_records_sealed_total{peer="gw-b",role="initiator"} 42'));
  }
  a.close();
  b.close();
});

t.test('a throwing snapshot rejects the render; the next one works', async (t) => {
  const src = new FakeSource();
  const m = new GatewayMetrics({ source: src, processMetrics: false });
  src.fail = 'boom';
  await t.rejects(m.render(), /boom/);
  src.fail = null;
  t.ok(has(await m.render(), 'qkdgw_ready 1'));
});

// ---------------------------------------------------------------- HTTP

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http(port: number, method: string, path: string, o: { agent?: Agent; body?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: o.agent, headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

t.test('HTTP: /metrics, /healthz, /readyz, HEAD, 404, 405, 400', async (t) => {
  const src = new FakeSource();
  const log = new MemoryLogger();
  const srv = await startMetricsServer({ source: src, host: '127.0.0.1', port: 0, logger: log, processMetrics: false });
  t.teardown(() => srv.close());
  const listening = log.lines.find((l) => l.event === 'metrics_listening');
  t.equal(listening?.port, srv.port, 'metrics_listening logged with the bound port');
  t.ok(srv.port > 0);

  const m = await http(srv.port, 'GET', '/metrics');
  t.equal(m.status, 200);
  t.equal(m.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  t.ok(has(m.body, 'qkdgw_peer_records_sealed_total{peer="gw-b",role="initiator"} 42'));
  t.equal(m.headers['cache-control'], 'no-store');

  const withQuery = await http(srv.port, 'GET', '/metrics?name[]=x');
  t.equal(withQuery.status, 200, 'a query string is ignored');

  const head = await http(srv.port, 'HEAD', '/metrics');
  t.equal(head.status, 200);
  t.equal(head.body, '', 'HEAD: no body');
  t.equal(Number(head.headers['content-length']), Buffer.byteLength(m.body), 'HEAD: the length of the GET body');

  const h = await http(srv.port, 'GET', '/healthz');
  t.same([h.status, h.body], [200, 'ok\n']);
  const hh = await http(srv.port, 'HEAD', '/healthz');
  t.same([hh.status, hh.body], [200, '']);

  const r = await http(srv.port, 'GET', '/readyz');
  t.same([r.status, r.body], [200, 'ready\n']);
  src.snap.notReady = ['gw-b', 'gw-d'];
  const nr = await http(srv.port, 'GET', '/readyz');
  t.same([nr.status, nr.body], [503, 'not ready: gw-b gw-d\n'], '503 naming the peers not ready');
  const nrh = await http(srv.port, 'HEAD', '/readyz');
  t.same([nrh.status, nrh.body], [503, '']);

  t.equal((await http(srv.port, 'GET', '/')).status, 404);
  t.equal((await http(srv.port, 'GET', '/metrics/')).status, 404);
  t.equal((await http(srv.port, 'GET', '/debug/pprof')).status, 404);
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
    const x = await http(srv.port, method, '/metrics');
    t.equal(x.status, 405, `${method} -> 405`);
    t.equal(x.headers.allow, 'GET, HEAD');
  }
  const withBody = await http(srv.port, 'GET', '/metrics', { body: 'hello', headers: { 'Content-Type': 'text/plain' } });
  t.equal(withBody.status, 400, 'a request body is refused');
  t.equal(withBody.headers.connection, 'close');
  const chunked = await http(srv.port, 'GET', '/healthz', { body: 'x', headers: { 'Transfer-Encoding': 'chunked' } });
  t.equal(chunked.status, 400, 'a chunked body is refused');
});

t.test('HTTP: a failing snapshot gives 500 with one line, logged; the server lives on', async (t) => {
  const src = new FakeSource();
  const log = new MemoryLogger();
  const srv = await startMetricsServer({ source: src, host: '127.0.0.1', port: 0, logger: log, processMetrics: false });
  t.teardown(() => srv.close());
  src.fail = 'peer table\nwas busy';
  const m = await http(srv.port, 'GET', '/metrics');
  t.equal(m.status, 500);
  t.equal(m.body, '/metrics: collecting failed: peer table was busy\n', 'one line');
  const r = await http(srv.port, 'GET', '/readyz');
  t.equal(r.status, 500);
  t.equal(log.lines.filter((l) => l.event === 'metrics_collect_failed').length, 2, 'both logged');
  t.equal((await http(srv.port, 'GET', '/healthz')).status, 200, 'still alive');
  src.fail = null;
  t.equal((await http(srv.port, 'GET', '/metrics')).status, 200, 'next scrape fine');
});

t.test('HTTP: close() resolves promptly with an idle keep-alive client, frees the port and unsubscribes', async (t) => {
  const src = new FakeSource();
  const srv = await startMetricsServer({ source: src, host: '127.0.0.1', port: 0, logger: new MemoryLogger(), processMetrics: false });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.equal((await http(srv.port, 'GET', '/metrics', { agent })).status, 200);
  t.equal((await http(srv.port, 'GET', '/healthz', { agent })).status, 200);
  t.equal(Object.values(agent.freeSockets).flat().length, 1, 'the client holds an idle keep-alive socket');
  t.equal(src.listeners.size, 1);
  const t0 = performance.now();
  await srv.close();
  t.ok(performance.now() - t0 < 1000, 'close() did not wait for the keep-alive timeout');
  t.equal(src.listeners.size, 0, 'KME observer removed');
  await srv.close();
  // The port is free again: something else can bind it.
  const other = createServer();
  await new Promise<void>((resolve, reject) => {
    other.once('error', reject);
    other.listen(srv.port, '127.0.0.1', resolve);
  });
  await new Promise((r) => other.close(r));
});

t.test('HTTP: an address in use is QKDGW_E_LISTEN and leaves no observer behind', async (t) => {
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => busy.close(r)));
  const port = (busy.address() as { port: number }).port;
  const src = new FakeSource();
  try {
    await startMetricsServer({ source: src, host: '127.0.0.1', port, logger: new MemoryLogger(), processMetrics: false });
    t.fail('should have thrown');
  } catch (e) {
    t.ok(isQkdgwError(e) && e.code === ErrorCodes.LISTEN, 'LISTEN');
    t.match(String((e as Error).message), `127.0.0.1:${port}`);
  }
  t.equal(src.listeners.size, 0);
});

t.test('64 silent connections (headers never finished) hold /healthz for about headersTimeout, not 30 s', async (t) => {
  const srv = await startMetricsServer({ source: new FakeSource(), host: '127.0.0.1', port: 0, logger: new MemoryLogger(), processMetrics: false });
  t.teardown(() => srv.close());
  const { connect } = await import('node:net');
  const idle = Array.from({ length: 64 }, () => {
    const c = connect({ host: '127.0.0.1', port: srv.port });
    c.on('error', () => undefined);
    c.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'); // never finished
    return c;
  });
  t.teardown(() => idle.forEach((c) => c.destroy()));
  await Promise.all(idle.map((c) => new Promise((r) => c.once('connect', r))));
  const t0 = Date.now();
  let status = 0;
  while (status !== 200 && Date.now() - t0 < 15_000) {
    status = await http(srv.port, 'GET', '/healthz').then((r) => r.status, () => 0);
    if (status !== 200) await new Promise((r) => setTimeout(r, 100)); // poll, do not spin
  }
  const took = Date.now() - t0;
  t.equal(status, 200, `/healthz answered after ${took} ms`);
  t.ok(took < 12_000, 'well before the 30 s of Node\'s default connection check');
});

t.test('no gauge is named *_total (promtool check metrics refuses them), our series or prom-client defaults', async (t) => {
  const m = new GatewayMetrics({ source: new FakeSource(), processMetrics: true });
  t.teardown(() => m.close());
  const text = await m.render();
  const gauges = [...text.matchAll(/^# TYPE (\S+) gauge$/gm)].map((x) => x[1]);
  t.ok(gauges.includes('qkdgw_nodejs_eventloop_lag_seconds'), 'the process defaults are there');
  t.same(gauges.filter((g) => g.endsWith('_total')), [], 'no gauge ends in _total');
  t.ok(/^qkdgw_nodejs_active_handles\{/m.test(text) || /^qkdgw_nodejs_active_handles /m.test(text), 'active handles still reported (per type)');
});
