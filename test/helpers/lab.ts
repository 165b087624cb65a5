// An in-process lab on 127.0.0.1: the real KME simulator pair and two real gateways
// (gw-a entry/initiator, gw-b exit/responder) built from generated YAML, plus a target
// TCP server behind gw-b. Real sockets everywhere; nothing but loopback.
//
// Extras for bad-input tests: a recording/tampering TCP proxy between gw-a and gw-b's
// data port (`proxy`), YAML edits before the gateways load (`editA`/`editB`, `policy`),
// per-connection outcomes of the target (`targets`), and `restartA` to swap gw-a.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { makeTestPki, type TestdirHost, type TestPki } from './pki.js';
import { freePorts, writeLabConfigs, type LabFiles } from '../../src/daemon/lab.js';
import { loadSimulatorConfig, readSimulatorPems } from '../../src/config/simulator.js';
import { loadGatewayConfig } from '../../src/config/gateway.js';
import { startKmeSimulator, type KmeSimulator } from '../../src/kms/simulator/index.js';
import { Gateway } from '../../src/daemon/gateway.js';
import { MemoryLogger } from '../../src/util/logger.js';
import type { PeerRuntime } from '../../src/tunnel/io/peer.js';

export interface Lab {
  sim: KmeSimulator;
  /** gw-a (replaced by restartA). */
  a: Gateway;
  b: Gateway;
  logA: MemoryLogger;
  logB: MemoryLogger;
  files: LabFiles;
  pki: TestPki;
  /** gw-a's port for the service `web`. */
  servicePort: number;
  /** gw-b's data port (the proxy forwards here). */
  dataPort: number;
  target: Server;
  /** Sockets the target accepted, in order. */
  accepted: Socket[];
  /** What happened to each connection the target accepted, in order. */
  targets: TargetConn[];
  /** The data-port proxy, when `proxy` was asked for. */
  proxy: DataProxy | null;
  /** gw-a's runtime for gw-b and gw-b's for gw-a. */
  rtA(): PeerRuntime;
  rtB(): PeerRuntime;
  /** Resolves once both sides may seal under an epoch. */
  ready(ms?: number): Promise<void>;
  /** Stops gw-a and starts a new one from gw-a.yaml after `edit` (and a fresh log). */
  restartA(edit?: (yaml: string) => string): Promise<Gateway>;
  stop(): Promise<void>;
}

export interface LabOverrides {
  rekeyAfterTime?: string;
  rekeyJitter?: string;
  hardLimitTime?: string;
  handshakeTimeout?: string;
  grace?: string;
  /** Extra keys for `policies.default` of both gateways, e.g. `{ keepalive: '1s' }`. */
  policy?: Record<string, string>;
  /** Called for every connection the target accepts (default: echo). */
  onTarget?: (s: Socket) => void;
  /** Put a proxy between gw-a and gw-b's data port (gw-a's peer `data` points at it). */
  proxy?: boolean | DataProxyOptions;
  /** Edits of the generated YAML text, applied before the gateways load it. */
  editA?: (yaml: string) => string;
  editB?: (yaml: string) => string;
}

/** How a socket ended, as its owner saw it. */
export interface Outcome {
  /** `eof`: clean FIN; `reset`: ECONNRESET; `error`: another error; `closed`: close without either. */
  how: 'eof' | 'reset' | 'error' | 'closed';
  code?: string;
  /** Bytes read before the end. */
  bytes: number;
}

/** One connection accepted by the target server. */
export interface TargetConn {
  socket: Socket;
  /** Bytes the target read so far. */
  bytes: number;
  /** Resolves at the first 'end', 'error' or 'close'. */
  outcome: Promise<Outcome>;
  /** Set once `outcome` resolved. */
  ended: Outcome | null;
}

export async function startLab(t: TestdirHost & { teardown(fn: () => unknown): void }, o: LabOverrides = {}): Promise<Lab> {
  const pki = await makeTestPki(t);
  const accepted: Socket[] = [];
  const targets: TargetConn[] = [];
  const target = createServer({ allowHalfOpen: true }, (s) => {
    accepted.push(s);
    s.on('error', () => undefined);
    const tc: TargetConn = { socket: s, bytes: 0, ended: null, outcome: watchEnd(s, () => tc.bytes) };
    void tc.outcome.then((x) => (tc.ended = x));
    targets.push(tc);
    s.on('data', (c: Buffer) => (tc.bytes += c.length));
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
  let proxy: DataProxy | null = null;
  if (o.proxy) {
    proxy = await startDataProxy(dataB, o.proxy === true ? {} : o.proxy);
    const port = proxy.port;
    editFile(files.gwA, (y) => y.replace(`data: 127.0.0.1:${dataB}`, `data: 127.0.0.1:${port}`));
  }
  if (o.policy) {
    const extra = Object.entries(o.policy).map(([k, v]) => `    ${k}: ${v}\n`).join('');
    for (const f of [files.gwA, files.gwB]) editFile(f, (y) => y.replace(/^( {4}grace: .*\n)/m, `$1${extra}`));
  }
  if (o.editA) editFile(files.gwA, o.editA);
  if (o.editB) editFile(files.gwB, o.editB);
  const simCfg = loadSimulatorConfig(files.kmeSim);
  const sim = await startKmeSimulator({ ...readSimulatorPems(simCfg) });
  const logB = new MemoryLogger();
  const b = await Gateway.start(loadGatewayConfig(files.gwB), { logger: logB });
  const logA = new MemoryLogger();
  const a = await Gateway.start(loadGatewayConfig(files.gwA), { logger: logA });
  const lab: Lab = {
    sim, a, b, logA, logB, files, pki, servicePort: service, dataPort: dataB, target, accepted, targets, proxy,
    rtA: () => lab.a.peers.get('gw-b')!,
    rtB: () => lab.b.peers.get('gw-a')!,
    async ready(ms = 15_000) {
      await until(() => lab.rtA().sendEpoch() !== null && lab.rtB().sendEpoch() !== null, ms, 'first epoch on both sides');
    },
    async restartA(edit) {
      await lab.a.stop();
      if (edit) editFile(files.gwA, edit);
      lab.logA.lines.length = 0;
      lab.a = await Gateway.start(loadGatewayConfig(files.gwA), { logger: lab.logA });
      return lab.a;
    },
    async stop() {
      await lab.a.stop();
      await b.stop();
      await sim.close();
      for (const s of accepted) s.destroy();
      await new Promise((r) => target.close(r));
      await proxy?.close();
    },
  };
  t.teardown(() => lab.stop());
  return lab;
}

function editFile(path: string, edit: (s: string) => string): void {
  writeFileSync(path, edit(readFileSync(path, 'utf8')), { mode: 0o600 });
}

/** Resolves once `pred` holds, checking every 20 ms; rejects after `ms`. */
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

/**
 * Resolves at the first of 'end' (eof), 'error' (reset when ECONNRESET) or 'close'.
 * `bytes` reports how much the caller has read (for the Outcome); it attaches no reader.
 */
export function watchEnd(s: Socket, bytes: () => number = () => 0): Promise<Outcome> {
  return new Promise((resolve) => {
    s.once('end', () => resolve({ how: 'eof', bytes: bytes() }));
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ how: e.code === 'ECONNRESET' ? 'reset' : 'error', code: e.code, bytes: bytes() }));
    s.once('close', () => resolve({ how: 'closed', bytes: bytes() }));
  });
}

/** Reads everything a socket delivers and how it ended (never rejects). */
export function collect(s: Socket): Promise<Outcome & { data: Buffer }> {
  const chunks: Buffer[] = [];
  let n = 0;
  s.on('data', (c: Buffer) => {
    chunks.push(c);
    n += c.length;
  });
  return watchEnd(s, () => n).then((o) => ({ ...o, data: Buffer.concat(chunks) }));
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// ------------------------------------------------------------------ data-port proxy

/** Carrier record types as the proxy sees them (protocol.md s5.1). */
export const REC = { OPEN: 0x01, DATA: 0x02, FIN: 0x03, RST: 0x05, KEEPALIVE: 0x06 } as const;

/** One carrier through the proxy. */
export interface ProxyConn {
  /** 0, 1, 2 ... in accept order. */
  index: number;
  /** From gw-a. */
  down: Socket;
  /** To gw-b's data port. */
  up: Socket;
  /** Every byte gw-a sent (entry -> exit), as received, before any tampering. */
  captured: Buffer[];
  /** Entry -> exit records seen so far: type and ct_len. */
  records: Array<{ type: number; ctLen: number }>;
  /** Resolves once both sockets closed. */
  closed: Promise<void>;
  /** Cuts the carrier: `fin` = bare TCP close (no FIN record) to gw-b, `rst` = TCP reset; gw-a's side is destroyed. */
  cut(how: 'fin' | 'rst'): void;
}

export interface DataProxyOptions {
  /**
   * Called for every complete entry -> exit record (header || ct || tag) before it is
   * forwarded; return a replacement of the same length to tamper.
   */
  onUpRecord?: (c: ProxyConn, rec: Buffer, n: number) => Buffer | void;
}

export interface DataProxy {
  port: number;
  conns: ProxyConn[];
  close(): Promise<void>;
}

const PREAMBLE = 28;
const HEADER = 20;

/** A TCP proxy in front of gw-b's data port that parses entry -> exit records. */
export async function startDataProxy(targetPort: number, o: DataProxyOptions = {}): Promise<DataProxy> {
  const conns: ProxyConn[] = [];
  const server = createServer({ allowHalfOpen: true }, (down) => {
    const up = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
    down.on('error', () => undefined);
    up.on('error', () => undefined);
    let cutDone = false;
    const c: ProxyConn = {
      index: conns.length,
      down,
      up,
      captured: [],
      records: [],
      closed: Promise.all([new Promise((r) => down.once('close', r)), new Promise((r) => up.once('close', r))]).then(() => undefined),
      cut(how) {
        cutDone = true;
        if (how === 'fin') up.end();
        else up.resetAndDestroy();
        down.destroy();
      },
    };
    conns.push(c);
    let buf = Buffer.alloc(0);
    let preambleSent = false;
    down.on('data', (chunk: Buffer) => {
      if (cutDone) return;
      c.captured.push(chunk);
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const out: Buffer[] = [];
      if (!preambleSent) {
        if (buf.length < PREAMBLE) return;
        out.push(buf.subarray(0, PREAMBLE));
        buf = buf.subarray(PREAMBLE);
        preambleSent = true;
      }
      while (buf.length >= HEADER) {
        const len = HEADER + buf.readUInt32BE(16);
        if (buf.length < len) break;
        let rec = Buffer.from(buf.subarray(0, len));
        buf = buf.subarray(len);
        c.records.push({ type: rec[0], ctLen: len - HEADER });
        const r = o.onUpRecord?.(c, rec, c.records.length - 1);
        if (r) rec = r;
        out.push(rec);
      }
      if (out.length && !up.write(Buffer.concat(out))) {
        down.pause();
        up.once('drain', () => down.resume());
      }
    });
    down.on('end', () => {
      if (!cutDone) up.end();
    });
    up.on('data', (chunk: Buffer) => {
      if (cutDone) return;
      if (!down.write(chunk)) {
        up.pause();
        down.once('drain', () => up.resume());
      }
    });
    up.on('end', () => {
      if (!cutDone) down.end();
    });
    // A reset on one side is passed on as a reset.
    up.on('close', (hadError) => {
      if (hadError && !down.destroyed) down.resetAndDestroy();
    });
    down.on('close', (hadError) => {
      if (hadError && !up.destroyed) up.resetAndDestroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    conns,
    async close() {
      for (const c of conns) {
        c.down.destroy();
        c.up.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}
