// An in-process lab on 127.0.0.1: the real KME simulator pair and two real gateways
// (gw-a entry/initiator, gw-b exit/responder) built from generated YAML, plus a target
// TCP server behind gw-b. Real sockets everywhere; nothing but loopback.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { makeTestPki, type TestdirHost } from './pki.js';
import { freePorts, writeLabConfigs, type LabFiles } from '../../src/daemon/lab.js';
import { loadSimulatorConfig, readSimulatorPems } from '../../src/config/simulator.js';
import { loadGatewayConfig } from '../../src/config/gateway.js';
import { startKmeSimulator, type KmeSimulator } from '../../src/kms/simulator/index.js';
import { Gateway } from '../../src/daemon/gateway.js';
import { MemoryLogger } from '../../src/util/logger.js';

export interface Lab {
  sim: KmeSimulator;
  a: Gateway;
  b: Gateway;
  logA: MemoryLogger;
  logB: MemoryLogger;
  files: LabFiles;
  servicePort: number;
  target: Server;
  /** Sockets the target accepted, in order. */
  accepted: Socket[];
  stop(): Promise<void>;
}

export interface LabOverrides {
  rekeyAfterTime?: string;
  rekeyJitter?: string;
  hardLimitTime?: string;
  handshakeTimeout?: string;
  grace?: string;
  /** Called for every connection the target accepts (default: echo). */
  onTarget?: (s: Socket) => void;
}

export async function startLab(t: TestdirHost & { teardown(fn: () => unknown): void }, o: LabOverrides = {}): Promise<Lab> {
  const pki = await makeTestPki(t);
  const accepted: Socket[] = [];
  const target = createServer({ allowHalfOpen: true }, (s) => {
    accepted.push(s);
    s.on('error', () => undefined);
    if (o.onTarget) o.onTarget(s);
    else s.pipe(s);
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  const [kmeA, kmeB, controlB, dataB, service] = await freePorts(5);
  const files = writeLabConfigs({
    dir: pki.dir,
    pki: pki.layout,
    ports: { kmeA, kmeB, controlB, dataB, service },
    target: { host: '127.0.0.1', port: (target.address() as { port: number }).port },
    rekeyAfterTime: o.rekeyAfterTime ?? '60s',
    rekeyJitter: o.rekeyJitter ?? '0s',
    hardLimitTime: o.hardLimitTime ?? '120s',
    handshakeTimeout: o.handshakeTimeout ?? '5s',
    grace: o.grace ?? '10s',
  });
  const simCfg = loadSimulatorConfig(files.kmeSim);
  const sim = await startKmeSimulator({ ...readSimulatorPems(simCfg) });
  const logA = new MemoryLogger();
  const logB = new MemoryLogger();
  const b = await Gateway.start(loadGatewayConfig(files.gwB), { logger: logB });
  const a = await Gateway.start(loadGatewayConfig(files.gwA), { logger: logA });
  const lab: Lab = {
    sim, a, b, logA, logB, files, servicePort: service, target, accepted,
    async stop() {
      await a.stop();
      await b.stop();
      await sim.close();
      for (const s of accepted) s.destroy();
      await new Promise((r) => target.close(r));
    },
  };
  t.teardown(() => lab.stop());
  return lab;
}

/** Resolves once `pred` holds, checking on each log line or every 20 ms; rejects after `ms`. */
export async function until(pred: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Connects to the service port. */
export function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads everything until EOF; rejects on error/reset. */
export function readAll(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
