// Graceful stop (issue 5 point 3): stop accepting, let open flows end up to the drain
// timeout, then reset what is left, zeroize every key and return.
import t from 'tap';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requestStatus } from '../../../src/cli/status.js';
import { startLab, until } from '../../helpers/lab.js';

function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.once('connect', () => (c.destroy(), resolve('connected')));
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

t.test('a flow that ends during the drain completes intact; new clients are refused at once; qkdgw status still answers', async (t) => {
  const sockDir = mkdtempSync(join(tmpdir(), 'qkdgw-drain-'));
  t.teardown(() => rmSync(sockDir, { recursive: true, force: true }));
  const sock = join(sockDir, 'a.sock');
  const lab = await startLab(t, { editA: (y) => `${y}admin:\n  socket: ${sock}\n` });
  await lab.ready();
  const c = connect({ host: '127.0.0.1', port: lab.servicePort, allowHalfOpen: true });
  let echoed = '';
  c.on('data', (d: Buffer) => (echoed += d.toString()));
  c.write('before stop;');
  await until(() => echoed === 'before stop;', 10_000, 'first echo');
  const rt = lab.rtA();

  const stopping = lab.a.stop({ drainMs: 20_000 });
  await until(() => lab.logA.lines.some((l) => l.event === 'drain_started'), 5_000, 'drain_started');
  t.equal(lab.logA.lines.find((l) => l.event === 'drain_started')?.flows, 1, 'one flow to drain');
  t.equal(await connectOutcome(lab.servicePort), 'ECONNREFUSED', 'the service no longer accepts');
  t.notOk(rt.closed, 'the peer keeps its epochs while flows drain');
  const during = await requestStatus(sock);
  t.equal(during.peers[0]?.flowsOpen, 1, 'qkdgw status answers during the drain and shows the flow');

  const ended = new Promise<void>((r) => c.once('end', () => r()));
  c.end('during the drain');
  await ended;
  const t0 = Date.now();
  await stopping;
  t.ok(Date.now() - t0 < 5_000, 'stop returned soon after the last flow ended, not at the drain timeout');
  t.equal(echoed, 'before stop;during the drain', 'every byte of the draining flow arrived');
  t.same(lab.logA.lines.find((l) => l.event === 'drain_done'), { ...lab.logA.lines.find((l) => l.event === 'drain_done'), flows_left: 0 }, 'drain_done: no flow left');
  t.ok(rt.closed, 'then the runtime is closed');
  t.notOk(existsSync(sock), 'and the admin socket is gone');
  t.equal(rt.session.slots.current, null, 'and its epochs are wiped');
});

t.test('a flow still open at the drain timeout is reset; stop returns and zeroizes', async (t) => {
  const lab = await startLab(t);
  await lab.ready();
  const c = connect({ host: '127.0.0.1', port: lab.servicePort, allowHalfOpen: true });
  let got = 0;
  c.on('data', (d: Buffer) => (got += d.length));
  const closed = new Promise<string>((resolve) => {
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    c.once('close', () => resolve('closed'));
  });
  c.write('x');
  await until(() => got === 1, 10_000, 'echo');
  const rt = lab.rtA();
  const t0 = Date.now();
  await lab.a.stop({ drainMs: 300 });
  const took = Date.now() - t0;
  t.ok(took >= 250 && took < 5_000, `stop waited for the drain timeout (${took} ms)`);
  const done = lab.logA.lines.find((l) => l.event === 'drain_done');
  t.equal(done?.flows_left, 1, 'drain_done reports the flow left');
  t.match(await closed, /ECONNRESET|closed/, 'the client connection was reset');
  t.ok(rt.closed);
  t.equal(lab.a.pools.size, 0, 'key pools closed (keys zeroized)');
});

t.test('stop with no open flow does not wait', async (t) => {
  const lab = await startLab(t);
  await lab.ready();
  const t0 = Date.now();
  await lab.a.stop({ drainMs: 20_000 });
  t.ok(Date.now() - t0 < 3_000, 'immediate');
  t.notOk(lab.logA.lines.some((l) => l.event === 'drain_started'), 'no drain when no flow is open');
});

t.test('endDrain (a second SIGTERM) cuts the drain short: the flow left is reset at once', async (t) => {
  const lab = await startLab(t);
  await lab.ready();
  const c = connect({ host: '127.0.0.1', port: lab.servicePort, allowHalfOpen: true });
  let got = 0;
  c.on('data', (d: Buffer) => (got += d.length));
  c.on('error', () => undefined);
  c.write('x');
  await until(() => got === 1, 10_000, 'echo');
  const t0 = Date.now();
  const stopping = lab.a.stop({ drainMs: 60_000 });
  await until(() => lab.logA.lines.some((l) => l.event === 'drain_started'), 5_000, 'drain_started');
  lab.a.endDrain();
  await stopping;
  t.ok(Date.now() - t0 < 5_000, `stop returned at once (${Date.now() - t0} ms), not after 60 s`);
  t.equal(lab.logA.lines.find((l) => l.event === 'drain_done')?.flows_left, 1, 'the flow left is reported and reset');
});
