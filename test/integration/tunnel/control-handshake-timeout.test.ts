// A TCP connection to the control port that never completes TLS is closed (no socket held).
import t from 'tap';
import { connect } from 'node:net';
import { makeTestPki } from '../../helpers/pki.js';
import { ControlServer } from '../../../src/tunnel/io/control-server.js';
import { systemClock } from '../../../src/util/clock.js';
import { MemoryLogger } from '../../../src/util/logger.js';

t.test('silent and half-hello connections are closed at the handshake timeout', async (t) => {
  const pki = await makeTestPki(t);
  const log = new MemoryLogger();
  const srv = new ControlServer({ host: '127.0.0.1', port: 0, tls: { cert: pki.gateways['gw-b'].cert, key: pki.gateways['gw-b'].key, ca: pki.controlCa.cert }, peers: new Map(), clock: systemClock, logger: log, handshakeTimeoutMs: 300 });
  const port = await srv.listen();
  t.teardown(() => srv.close());
  const closedWithin = (write?: Buffer) =>
    new Promise<number>((resolve) => {
      const t0 = Date.now();
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      if (write) s.write(write);
      s.once('close', () => resolve(Date.now() - t0));
    });
  const silent = await closedWithin();
  t.ok(silent < 5_000, `silent connection closed (${silent} ms)`);
  const partial = await closedWithin(Buffer.from('160301', 'hex'));
  t.ok(partial < 5_000, `partial ClientHello closed (${partial} ms)`);
  t.ok(log.lines.filter((l) => l.event === 'control_rejected').length >= 2, 'each counted and logged');
});

t.test('a flood from one source is cut before TLS (per-source rate, pending handshakes bounded)', async (t) => {
  const pki = await makeTestPki(t);
  const srv = new ControlServer({ host: '127.0.0.1', port: 0, tls: { cert: pki.gateways['gw-b'].cert, key: pki.gateways['gw-b'].key, ca: pki.controlCa.cert }, peers: new Map(), clock: systemClock, logger: new MemoryLogger(), maxNewConnectionsPerSource: 5, maxPendingHandshakes: 8 });
  const port = await srv.listen();
  t.teardown(() => srv.close());
  const socks = await Promise.all(
    Array.from({ length: 40 }, () => new Promise<import('node:net').Socket>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      s.once('connect', () => resolve(s));
      s.once('close', () => resolve(s));
    })),
  );
  const limitedNow = () => (srv.rejected.get('rate_limited') ?? 0) + (srv.rejected.get('too_many_handshakes') ?? 0);
  for (const end = Date.now() + 3_000; limitedNow() < 30 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  const limited = limitedNow();
  t.ok(limited >= 30, `most of the flood was cut at once (${limited} of 40)`);
  for (const s of socks) s.destroy();
});
