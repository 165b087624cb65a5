// Issue 5 point 2 (BC-07): a reload builds the whole new state, swaps it atomically, keeps
// the tunnels whose peer did not change (no flow reset, no extra epoch), tears down only
// what was removed, and a reload that fails anywhere changes nothing.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { startLab, until, type Lab } from '../../helpers/lab.js';
import { loadGatewayConfig } from '../../../src/config/gateway.js';
import type { ReloadPlan } from '../../../src/daemon/gateway.js';

/** A flow through gw-a's service `port` that writes 16 KiB chunks on demand and hashes both directions. */
function stream(port: number) {
  const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const sent = createHash('sha256');
  const back = createHash('sha256');
  const st = { nSent: 0, nBack: 0, error: null as Error | null, s };
  s.on('data', (c: Buffer) => {
    back.update(c);
    st.nBack += c.length;
  });
  s.on('error', (e) => (st.error = e));
  return {
    st,
    write(): void {
      const c = randomBytes(16_384);
      sent.update(c);
      st.nSent += c.length;
      s.write(c);
    },
    /** Ends the flow and resolves once the echo ended; returns both digests. */
    async finish(): Promise<{ sent: string; back: string }> {
      const ended = new Promise<void>((r) => s.once('end', () => r()));
      s.end();
      await ended;
      return { sent: sent.digest('hex'), back: back.digest('hex') };
    },
  };
}

const edit = (file: string, f: (y: string) => string): void => writeFileSync(file, f(readFileSync(file, 'utf8')), { mode: 0o600 });
const reloadA = (lab: Lab): Promise<ReloadPlan> => lab.a.reload(loadGatewayConfig(lab.files.gwA));
const reloadB = (lab: Lab): Promise<ReloadPlan> => lab.b.reload(loadGatewayConfig(lab.files.gwB));

function echoOnce(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString()));
    c.once('end', () => resolve(got));
    c.once('error', reject);
    c.end(text);
  });
}

t.test('a streaming flow keeps running across 10 reloads of both gateways, data intact, no extra epoch', async (t) => {
  const lab = await startLab(t); // rekey after 60 s: any epoch during the test would come from a reload
  await lab.ready();
  const epochA = lab.rtA().session.slots.current!.n;
  const switchesA = lab.rtA().stats.epochSwitches;
  const switchesB = lab.rtB().stats.epochSwitches;
  const rtA = lab.rtA();
  const rtB = lab.rtB();
  const f = stream(lab.servicePort);
  f.write();

  const steps: Array<{ what: string; run: () => Promise<ReloadPlan>; check?: (p: ReloadPlan) => Promise<void> | void }> = [
    { what: 'unchanged file', run: () => reloadA(lab), check: (p) => void t.same(p.changed, [], 'nothing changed') },
    { what: 'log level debug', run: () => (edit(lab.files.gwA, (y) => y.replace(/level: info/, 'level: debug')), reloadA(lab)), check: (p) => void t.same(p.changed, ['log']) },
    { what: 'kme timeout', run: () => (edit(lab.files.gwA, (y) => y.replace(/^kme:\n/m, 'kme:\n  timeout: 4s\n')), reloadA(lab)), check: (p) => void t.ok(p.kme, 'KME client rebuilt') },
    {
      what: 'a second service',
      run: () => (edit(lab.files.gwA, (y) => y.replace(/^services:\n/m, 'services:\n  - name: web2\n    listen: 127.0.0.1:0\n    peer: gw-b\n')), reloadA(lab)),
      check: (p) => void t.same(p.services.bound, ['web2']),
    },
    {
      what: 'gw-b exports web2',
      run: () => (edit(lab.files.gwB, (y) => y.replace(/^exports:\n/m, `exports:\n  - name: web2\n    target: 127.0.0.1:${(lab.target.address() as { port: number }).port}\n    peers: [gw-a]\n`)), reloadB(lab)),
      check: async (p) => {
        t.same(p.peers.kept, ['gw-a'], 'gw-b kept its peer');
        t.equal(await echoOnce(lab.a.addresses.services.web2, 'through web2'), 'through web2', 'the new service carries data at once, under the same epoch');
      },
    },
    { what: 'an unused policy', run: () => (edit(lab.files.gwA, (y) => y.replace(/^policies:\n/m, 'policies:\n  spare:\n    rekey_after_time: 30s\n')), reloadA(lab)), check: (p) => void t.same(p.peers.kept, ['gw-b']) },
    { what: 'gw-b status interval', run: () => (edit(lab.files.gwB, (y) => y.replace(/^kme:\n/m, 'kme:\n  status_interval: 2s\n')), reloadB(lab)) },
    { what: 'web2 removed', run: () => (edit(lab.files.gwA, (y) => y.replace(/ {2}- name: web2\n.*\n.*\n/, '')), reloadA(lab)), check: (p) => void t.same(p.services.closed, ['web2']) },
    { what: 'gw-b data rate limit', run: () => (edit(lab.files.gwB, (y) => y.replace(/^data:\n/m, 'data:\n  max_new_connections_per_source: 50\n')), reloadB(lab)), check: (p) => void t.same(p.changed, ['data']) },
    { what: 'log level back', run: () => (edit(lab.files.gwA, (y) => y.replace(/level: debug/, 'level: info')), reloadA(lab)) },
  ];
  for (const step of steps) {
    f.write();
    const plan = await step.run();
    t.same(plan.blocked, [], `${step.what}: applied`);
    t.same(plan.peers.rebuilt, [], `${step.what}: no peer rebuilt`);
    await step.check?.(plan);
    f.write();
  }
  t.equal(lab.a.cfg.kme.timeoutMs, 4000, 'the reloaded kme timeout is in force');
  t.equal(lab.a.addresses.services.web2, undefined, 'web2 is gone');
  t.equal(lab.logA.lines.filter((l) => l.event === 'reload_applied').length + lab.logB.lines.filter((l) => l.event === 'reload_applied').length, 10, '10 reloads applied');

  await until(() => f.st.nBack === f.st.nSent, 15_000, 'every byte echoed');
  const d = await f.finish();
  t.equal(f.st.error, null, 'the flow was never reset');
  t.equal(d.back, d.sent, `${f.st.nSent} bytes echoed intact`);
  t.equal(lab.rtA(), rtA, 'gw-a kept its runtime for gw-b');
  t.equal(lab.rtB(), rtB, 'gw-b kept its runtime for gw-a');
  t.equal(lab.rtA().session.slots.current!.n, epochA, 'same epoch as before the reloads');
  t.equal(lab.rtA().stats.epochSwitches, switchesA, 'no epoch switch on gw-a');
  t.equal(lab.rtB().stats.epochSwitches, switchesB, 'no epoch switch on gw-b');
});

t.test('a policy change is applied in place: same runtime, same epoch, the flow goes on; the pool keeps its keys', async (t) => {
  const lab = await startLab(t);
  await lab.ready();
  const rt = lab.rtA();
  const epoch = rt.session.slots.current!.n;
  const stock = lab.a.pools.get('gw-b')!.stats().stock;
  const f = stream(lab.servicePort);
  f.write();
  await until(() => f.st.nBack > 0, 10_000, 'echo');
  edit(lab.files.gwA, (y) => y.replace(/rekey_after_time: 60s/, 'rekey_after_time: 50s').replace(/^kme:\n/m, 'kme:\n  timeout: 4s\n  status_interval: 2s\n'));
  const plan = await reloadA(lab);
  t.same(plan.peers, { kept: [], retuned: ['gw-b'], added: [], rebuilt: [], removed: [] }, 'gw-b retuned');
  t.equal(lab.rtA(), rt, 'same runtime');
  t.equal(rt.session.opts.rekeyAfterTimeMs, 50_000, 'the new rekey time is in force for the next epochs');
  t.equal(rt.session.slots.current!.n, epoch, 'same epoch');
  t.equal(lab.a.pools.get('gw-b')!.stats().stock, stock, `the ${stock} keys held ahead stay (a kme.timeout change is not a new KME)`);
  t.ok(lab.logA.lines.some((l) => l.event === 'peer_retuned' && l.peer === 'gw-b'), 'peer_retuned logged');
  f.write();
  await until(() => f.st.nBack === f.st.nSent, 10_000, 'every byte echoed');
  const d = await f.finish();
  t.equal(f.st.error, null, 'the flow was not reset');
  t.equal(d.back, d.sent);
});

t.test('a peer whose entry changed is rebuilt (its flows reset, a new first epoch); a removed peer is torn down', async (t) => {
  const lab = await startLab(t);
  await lab.ready();
  const old = lab.rtA();
  const f = stream(lab.servicePort);
  f.write();
  await until(() => f.st.nBack > 0, 10_000, 'echo');
  const closed = new Promise<void>((r) => f.st.s.once('close', () => r()));

  // Same data port, written as localhost: a changed entry (a new address to dial).
  edit(lab.files.gwA, (y) => y.replace(/(\n {4}data: )127\.0\.0\.1:/, '$1localhost:'));
  const plan = await reloadA(lab);
  t.same(plan.peers, { kept: [], retuned: [], added: [], rebuilt: ['gw-b'], removed: [] }, 'gw-b rebuilt');
  t.ok(old.closed, 'the old runtime was closed (its epochs zeroized)');
  await closed;
  t.pass('the flow of the old runtime was reset');
  t.ok(lab.logA.lines.some((l) => l.event === 'peer_rebuilt' && l.peer === 'gw-b'), 'peer_rebuilt logged');
  await lab.ready(20_000);
  t.not(lab.rtA(), old, 'a new runtime');
  t.equal(await echoOnce(lab.servicePort, 'after the rebuild'), 'after the rebuild', 'traffic flows under the new runtime');

  // Replace gw-b by gw-c (and drop the service that used gw-b): gw-b is torn down, its service port closes.
  const port = lab.servicePort;
  const rtB = lab.rtA();
  edit(lab.files.gwA, (y) => y.replace(/^peers:\n[\s\S]*?(?=^policies:)/m, 'peers:\n  - identity: gw-c\n    control: 127.0.0.1:1\n'));
  const plan2 = await reloadA(lab);
  t.same(plan2.peers, { kept: [], retuned: [], added: ['gw-c'], rebuilt: [], removed: ['gw-b'] });
  t.same(plan2.services.closed, ['web']);
  t.ok(rtB.closed, 'the runtime for gw-b was closed');
  t.ok(lab.logA.lines.some((l) => l.event === 'peer_removed' && l.peer === 'gw-b'), 'peer_removed logged');
  t.same([...lab.a.peers.keys()], ['gw-c'], 'only gw-c is configured');
  t.same([...lab.a.pools.keys()], ['gw-c'], 'and only its key pool runs');
  await until(() => lab.logB.lines.some((l) => l.event === 'control_down'), 40_000, 'gw-b sees its control channel go');
  const refused = await new Promise<string>((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.once('connect', () => (c.destroy(), resolve('connected')));
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  t.equal(refused, 'ECONNREFUSED', 'the removed service no longer listens');
});

t.test('a reload that fails half-way (an address in use) changes nothing and closes what it bound', async (t) => {
  const lab = await startLab(t);
  await lab.ready();
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => busy.close(r)));
  const busyPort = (busy.address() as { port: number }).port;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const freePort = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));

  const before = lab.a.cfg;
  const rt = lab.rtA();
  const epoch = rt.session.slots.current!.n;
  const f = stream(lab.servicePort);
  f.write();
  // web2 binds first (a free port), web3 then fails (taken): web2 must be closed again.
  edit(lab.files.gwA, (y) =>
    y
      .replace(/^services:\n/m, `services:\n  - name: web2\n    listen: 127.0.0.1:${freePort}\n    peer: gw-b\n  - name: web3\n    listen: 127.0.0.1:${busyPort}\n    peer: gw-b\n`)
      .replace(/level: info/, 'level: debug')
      .replace(/rekey_after_time: 60s/, 'rekey_after_time: 50s'),
  );
  await t.rejects(reloadA(lab), { code: 'QKDGW_E_LISTEN' }, 'the taken address refuses the reload');
  t.equal(lab.a.cfg, before, 'the configuration in force is the old one');
  t.equal(lab.rtA(), rt, 'the peer was not rebuilt');
  t.equal(rt.session.opts.rekeyAfterTimeMs, 60_000, 'nor retuned: the old policy is in force');
  t.notOk(rt.closed);
  t.equal(lab.a.addresses.services.web2, undefined, 'web2 is not registered');
  const web2 = await new Promise<string>((resolve) => {
    const c: Socket = connect({ host: '127.0.0.1', port: freePort });
    c.once('connect', () => (c.destroy(), resolve('connected')));
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  t.equal(web2, 'ECONNREFUSED', 'the listener bound for web2 was closed again');
  t.equal((lab.a.log as { level?: string }).level ?? 'info', 'info', 'log level unchanged');
  f.write();
  await until(() => f.st.nBack === f.st.nSent, 10_000, 'echo');
  const d = await f.finish();
  t.equal(f.st.error, null, 'the flow was not disturbed');
  t.equal(d.back, d.sent);
  t.equal(rt.session.slots.current!.n, epoch, 'same epoch');
});
