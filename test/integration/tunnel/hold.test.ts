// protocol.md s4 hold: with no epoch to seal under, new clients are held (nothing sent) until
// `hold` passes, then reset; later clients are reset at once until an epoch is installed;
// once one is, traffic resumes. The KME is unreachable at first, then fixed by a reload.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { startLab, until } from '../../helpers/lab.js';
import { loadGatewayConfig } from '../../../src/config/gateway.js';

const outcome = (s: Socket) =>
  new Promise<{ how: 'reset' | 'eof'; at: number; bytes: number }>((resolve) => {
    let bytes = 0;
    s.on('data', (c: Buffer) => (bytes += c.length));
    s.once('error', () => resolve({ how: 'reset', at: Date.now(), bytes }));
    s.once('end', () => resolve({ how: 'eof', at: Date.now(), bytes }));
  });

t.test('hold: held, then reset at the hold; reset at once after; resumes on an epoch', async (t) => {
  let good = '';
  const lab = await startLab(t, {
    policy: { hold: '2s' },
    editA: (y) => {
      good = y;
      return y.replace(/url: https:\/\/127\.0\.0\.1:\d+\/api\/v1/, 'url: https://127.0.0.1:1/api/v1');
    },
  });
  const start = Date.now();
  const c1 = connect({ host: '127.0.0.1', port: lab.servicePort });
  c1.write('hello');
  const o1 = await outcome(c1);
  t.equal(o1.how, 'reset', 'the held client is reset, not closed cleanly');
  t.equal(o1.bytes, 0, 'it got nothing');
  t.ok(o1.at - start >= 1_000, `it was held first (${o1.at - start} ms)`);
  t.equal(lab.accepted.length, 0, 'nothing reached the target');
  // The KME client retries a refused connection (a transient fault, C29) within its deadline first.
  await until(() => lab.logA.lines.some((l) => l.event === 'handshake_failed'), 15_000, 'handshake_failed');
  t.ok(lab.logA.lines.some((l) => l.event === 'handshake_failed' && /KMS_CONNECT/.test(String(l.reason))), 'gw-a logged why: the KME is unreachable');

  const t2 = Date.now();
  const c2 = connect({ host: '127.0.0.1', port: lab.servicePort });
  const o2 = await outcome(c2);
  t.equal(o2.how, 'reset', 'a later client is reset');
  t.ok(o2.at - t2 < 1_000, `at once (${o2.at - t2} ms)`);

  // Fix the KME URL by reload: the next handshake attempt installs an epoch.
  writeFileSync(lab.files.gwA, good);
  await lab.a.reload(loadGatewayConfig(lab.files.gwA));
  await lab.ready(20_000);
  const c3 = connect({ host: '127.0.0.1', port: lab.servicePort, allowHalfOpen: true });
  let echo = '';
  c3.on('data', (c: Buffer) => (echo += c.toString()));
  await new Promise<void>((resolve, reject) => {
    c3.once('end', () => resolve());
    c3.once('error', reject);
    c3.end('after the hold');
  });
  t.equal(echo, 'after the hold', 'traffic resumes once an epoch is installed');
});
