// The gateway serves metrics.listen from start (before its first KME call) to stop.
import t from 'tap';
import { request } from 'node:http';
import { startLab } from '../../helpers/lab.js';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', reject);
    r.end();
  });
}

t.test('metrics.listen: /metrics, /healthz and /readyz from the running gateway; closed at stop', async (t) => {
  const lab = await startLab(t, { editA: (y) => `${y}metrics:\n  listen: 127.0.0.1:0\n` });
  await lab.ready();
  const port = lab.a.addresses.metrics!;
  t.ok(port > 0, `listening on 127.0.0.1:${port}`);
  t.same(await get(port, '/healthz'), { status: 200, body: 'ok\n' });
  t.equal((await get(port, '/readyz')).status, 200, 'ready once the first QKD epoch is up');
  const m = await get(port, '/metrics');
  t.equal(m.status, 200);
  t.match(m.body, /^qkdgw_kme_request_duration_seconds_count\{op="enc_keys",outcome="ok"\} [1-9]\d*$/m, 'the first enc_keys call is in the histogram');
  t.match(m.body, /^qkdgw_peer_state\{peer="gw-b",role="initiator",state="up"\} 1$/m);
  t.match(m.body, /^qkdgw_peer_mode\{peer="gw-b",role="initiator",mode="qkd"\} 1$/m);
  t.ok(lab.logA.lines.some((l) => l.event === 'metrics_listening'), 'metrics_listening logged');
  await lab.a.stop();
  await t.rejects(get(port, '/healthz'), { code: 'ECONNREFUSED' }, 'closed at stop');
});
