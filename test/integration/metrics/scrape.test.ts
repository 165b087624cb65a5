// Issue 5 point 4 ("metrics scraped over HTTP and checked against known traffic"): the
// metrics server runs against the real gw-a of the lab (two gateways + the KME simulator on
// 127.0.0.1), known bytes go through the tunnel to the echo target, and the scraped
// counters must match them; /readyz turns 503 naming gw-b once gw-b is gone.
import t from 'tap';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { startLab, until, dial, readAll, sha256 } from '../../helpers/lab.js';
import { startMetricsServer } from '../../../src/daemon/metrics-server.js';

interface Reply {
  status: number;
  type: string | undefined;
  body: string;
}

function get(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The exposition's samples: `name{labels}` (exactly as printed) -> value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const PEER = '{peer="gw-b",role="initiator"}';

t.test('metrics of gw-a match the traffic sent through the tunnel; readyz follows gw-b', async (t) => {
  // 2 s rekeys: the pool hands out keys and refills with enc_keys while we watch.
  const lab = await startLab(t, { rekeyAfterTime: '2s', hardLimitTime: '20s' });
  const srv = await startMetricsServer({ source: lab.a, host: '127.0.0.1', port: 0, logger: lab.logA });
  t.teardown(() => srv.close());
  const listening = lab.logA.lines.find((l) => l.event === 'metrics_listening');
  t.equal(listening?.port, srv.port, 'metrics_listening logged with the port');
  t.equal(listening?.component, 'metrics');

  let encKeys = 0;
  const off = lab.a.onKmeCall((c) => {
    if (c.op === 'enc_keys' && c.errorKind === null) encKeys++;
  });
  t.teardown(off);

  await lab.ready();
  const ready = await get(srv.port, '/readyz');
  t.same([ready.status, ready.body], [200, 'ready\n'], '/readyz 200 once gw-b is up in QKD mode');
  t.same([(await get(srv.port, '/healthz')).status, (await get(srv.port, '/healthz')).body], [200, 'ok\n']);

  // Known traffic: one flow, PAYLOAD bytes out and the same bytes echoed back.
  const PAYLOAD = 300_000;
  const payload = randomBytes(PAYLOAD);
  const s = await dial(lab.servicePort);
  const back = readAll(s);
  s.end(payload);
  t.equal(sha256(await back), sha256(payload), 'echoed intact');
  await until(() => lab.a.openFlows === 0, 10_000, 'the flow closed on gw-a');

  // A rekey after we subscribed takes a pooled key, and the pool refills with enc_keys.
  const epochNow = lab.rtA().session.slots.current!.n;
  await until(() => lab.rtA().session.slots.current!.n > epochNow && encKeys >= 1, 15_000, 'a rekey and an enc_keys call');

  const m = await get(srv.port, '/metrics');
  t.equal(m.status, 200);
  t.equal(m.type, 'text/plain; version=0.0.4; charset=utf-8');
  const v = samples(m.body);
  const snap = lab.a.snapshot();
  const traffic = snap.peers[0];
  // Sealed bytes count DATA payloads only (not OPEN's service name).
  const sealed = v.get(`qkdgw_peer_sealed_bytes_total${PEER}`)!;
  t.equal(sealed, PAYLOAD, 'sealed bytes = the bytes sent (one flow, nothing else)');
  t.equal(v.get(`qkdgw_peer_opened_bytes_total${PEER}`), PAYLOAD, 'opened bytes = bytes echoed back');
  t.ok(v.get(`qkdgw_peer_records_sealed_total${PEER}`)! >= 1, 'records sealed > 0');
  t.ok(v.get(`qkdgw_peer_records_opened_total${PEER}`)! >= 1, 'records opened > 0');
  t.equal(v.get(`qkdgw_peer_records_sealed_total${PEER}`), traffic.recordsSealed, 'records sealed as the runtime counted them');
  t.ok(v.get(`qkdgw_peer_epoch${PEER}`)! >= 2, 'epoch >= 2 after the rekey');
  t.ok(v.get(`qkdgw_peer_epoch_age_seconds${PEER}`)! >= 0);
  t.ok(v.get(`qkdgw_peer_rekeys_total{peer="gw-b",role="initiator",reason="time"}`)! >= 1, 'a time-triggered rekey counted');
  t.equal(v.get(`qkdgw_peer_mode{peer="gw-b",role="initiator",mode="qkd"}`), 1, 'mode qkd');
  t.equal(v.get(`qkdgw_peer_mode{peer="gw-b",role="initiator",mode="degraded"}`), 0);
  t.equal(v.get(`qkdgw_peer_state{peer="gw-b",role="initiator",state="up"}`), 1, 'state up');
  t.equal(v.get(`qkdgw_peer_flows_open${PEER}`), 0, 'the flow is closed');
  t.ok(v.get(`qkdgw_peer_flows_opened_total${PEER}`)! >= 1);
  t.equal(v.get(`qkdgw_peer_auth_failures_total${PEER}`), 0);
  t.equal(v.get(`qkdgw_peer_replay_drops_total${PEER}`), 0);
  t.equal(v.get('qkdgw_ready'), 1);
  t.ok(v.get('qkdgw_kme_request_duration_seconds_count{op="enc_keys",outcome="ok"}')! >= 1, 'enc_keys latency observed');
  t.ok(v.get('qkdgw_kme_request_duration_seconds_bucket{le="10",op="enc_keys",outcome="ok"}')! >= 1, 'within the 10 s bucket');
  t.ok(v.get('qkdgw_kme_http_responses_total{code="200"}')! >= 1, 'KME 200 replies counted');
  t.equal(v.get(`qkdgw_kme_info{kme="${snap.kme.url}"}`), 1, 'the KME URL');
  t.ok(v.get('qkdgw_pool_keys_fetched_total{peer="gw-b"}')! >= 2, 'pool fetched keys');
  t.ok(v.get('qkdgw_pool_keys_taken_total{peer="gw-b"}')! >= 2, 'one key per epoch taken');
  t.ok(v.has('qkdgw_pool_keys{peer="gw-b"}'));
  t.equal(v.get(`qkdgw_crypto_backend_info{backend="${snap.backend}"}`), 1, `backend ${snap.backend}`);
  t.ok(v.get('qkdgw_uptime_seconds')! > 0);
  t.ok(v.has('qkdgw_nodejs_eventloop_lag_seconds'), 'event-loop lag (prom-client default metrics)');
  t.equal(v.get('qkdgw_reloads_total{result="failed"}'), 0);

  const head = await get(srv.port, '/metrics', 'HEAD');
  t.same([head.status, head.body], [200, '']);

  // gw-b goes away: gw-a's control channel drops and the required peer blocks readiness.
  // (stop() must return although gw-a is still connected to gw-b's control listener.)
  await lab.b.stop();
  await until(() => !lab.rtA().controlUp, 10_000, 'control down on gw-a');
  const nr = await get(srv.port, '/readyz');
  t.same([nr.status, nr.body], [503, 'not ready: gw-b\n'], '/readyz 503 naming gw-b');
  const after = samples((await get(srv.port, '/metrics')).body);
  t.equal(after.get(`qkdgw_peer_state{peer="gw-b",role="initiator",state="down"}`), 1, 'state down');
  t.equal(after.get(`qkdgw_peer_ready${PEER}`), 0);
  t.equal(after.get('qkdgw_ready'), 0);
  t.equal(after.get(`qkdgw_peer_sealed_bytes_total${PEER}`), sealed, 'totals survive the peer going down');
  t.same([(await get(srv.port, '/healthz')).status], [200], '/healthz still 200: the process is alive');
});
