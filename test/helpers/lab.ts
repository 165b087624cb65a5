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
import { labFiles, writeGwAConfig, writeGwBConfig, writeSimConfig, type LabAddresses, type LabFiles, type LabOptions } from '../../src/daemon/lab.js';
import { loadSimulatorConfig, readSimulatorPems } from '../../src/config/simulator.js';
import { loadGatewayConfig } from '../../src/config/gateway.js';
import { startKmeSimulator, type KmeSimulator } from '../../src/kms/simulator/index.js';
import { Gateway } from '../../src/daemon/gateway.js';
import { MemoryLogger } from '../../src/util/logger.js';
import type { Clock } from '../../src/util/clock.js';
import type { PeerRuntime } from '../../src/tunnel/io/peer.js';
import { peerGone } from '../../src/tunnel/io/carrier-link.js';

export interface Lab {
  sim: KmeSimulator;
  /** gw-a (replaced by restartA). */
  a: Gateway;
  b: Gateway;
  logA: MemoryLogger;
  logB: MemoryLogger;
  files: LabFiles;
  pki: TestPki;
  /** gw-a's port for the service `web` (changes on restartA: gw-a binds port 0). */
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
  /** Stops gw-a (if running) and starts a new one from gw-a.yaml after `edit`, with logA emptied. */
  restartA(edit?: (yaml: string) => string): Promise<Gateway>;
  /** Stops everything (also done at teardown; idempotent). */
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
  /** Do not start gw-a: the test starts it with restartA() (lab.a is unset until then). */
  deferA?: boolean;
  /** Start gw-a without the config's certificate checks (to show what gw-b does with a bad gw-a certificate). */
  uncheckedCertsA?: boolean;
  /** The clock of both gateways (e.g. a FastClock); default: the system clock. */
  clock?: Clock;
}

/**
 * Protocol time that runs `factor` times faster than the wall clock, for both gateways at
 * once: a 30 s liveness timeout takes 3 s at factor 10. Real sockets, real events; only
 * the gateways' timers and `now()` are scaled.
 */
export class FastClock implements Clock {
  readonly factor: number;
  readonly #t0 = performance.now();
  constructor(factor: number) {
    this.factor = factor;
  }
  now(): number {
    return this.#t0 + (performance.now() - this.#t0) * this.factor;
  }
  setTimer(ms: number, fn: () => void): () => void {
    const t = setTimeout(fn, Math.max(0, ms) / this.factor);
    t.unref();
    return () => clearTimeout(t);
  }
}

/** How a socket ended, as its owner saw it. */
export interface Outcome {
  /** `eof`: clean FIN; `reset`: ECONNRESET; `error`: another error; `closed`: close without either. */
  how: 'eof' | 'reset' | 'error' | 'closed';
  code?: string;
  /** Bytes read before the end. */
  bytes: number;
  /** The reset was seen as EOF by libuv and identified through the kernel's TCP state. */
  eofAfterRst?: boolean;
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
  // Whatever started is stopped at teardown, also when a later step throws.
  const parts: { a?: () => Gateway | null; b?: Gateway; sim?: KmeSimulator; proxy?: DataProxy } = {};
  t.teardown(async () => {
    await parts.a?.()?.stop();
    await parts.b?.stop();
    await parts.sim?.close();
    for (const s of accepted) s.destroy();
    await new Promise((r) => target.close(r));
    await parts.proxy?.close();
  });
  // Race-free: every listener binds port 0 and the next file gets the real port.
  const lo: LabOptions = {
    dir: pki.dir,
    pki: pki.layout,
    target: { host: '127.0.0.1', port: (target.address() as { port: number }).port },
    rekeyAfterTime: o.rekeyAfterTime ?? '60s',
    rekeyJitter: o.rekeyJitter ?? '0s',
    hardLimitTime: o.hardLimitTime ?? '120s',
    handshakeTimeout: o.handshakeTimeout ?? '5s',
    grace: o.grace ?? '10s',
  };
  const files = labFiles(pki.dir);
  const extraPolicy = (y: string): string => {
    if (!o.policy) return y;
    const extra = Object.entries(o.policy).map(([k, v]) => `    ${k}: ${v}\n`).join('');
    return y.replace(/^( {4}grace: .*\n)/m, `$1${extra}`);
  };
  writeSimConfig(lo);
  const sim = await startKmeSimulator({ ...readSimulatorPems(loadSimulatorConfig(files.kmeSim)) });
  parts.sim = sim;
  const url = (id: string): string => sim.kmes.find((k) => k.kmeId === id)!.url;
  const addr: LabAddresses = { kmeAUrl: url('KME_A'), kmeBUrl: url('KME_B') };
  writeGwBConfig(lo, addr);
  editFile(files.gwB, (y) => (o.editB ? o.editB(extraPolicy(y)) : extraPolicy(y)));
  const logB = new MemoryLogger();
  const b = await Gateway.start(loadGatewayConfig(files.gwB), { logger: logB, clock: o.clock });
  parts.b = b;
  const dataB = b.addresses.data!;
  let proxy: DataProxy | null = null;
  if (o.proxy) proxy = parts.proxy = await startDataProxy(dataB, o.proxy === true ? {} : o.proxy);
  writeGwAConfig(lo, { ...addr, controlB: b.addresses.control!, dataB: proxy ? proxy.port : dataB });
  editFile(files.gwA, (y) => (o.editA ? o.editA(extraPolicy(y)) : extraPolicy(y)));
  const logA = new MemoryLogger();
  const a = o.deferA ? (null as unknown as Gateway) : await Gateway.start(loadGatewayConfig(files.gwA, { checkCertificates: !o.uncheckedCertsA }), { logger: logA, clock: o.clock });
  parts.a = () => lab.a;
  const lab: Lab = {
    sim, a, b, logA, logB, files, pki, servicePort: a?.addresses.services.web ?? 0, dataPort: dataB, target, accepted, targets, proxy,
    rtA: () => lab.a.peers.get('gw-b')!,
    rtB: () => lab.b.peers.get('gw-a')!,
    async ready(ms = 15_000) {
      await until(() => lab.rtA().sendEpoch() !== null && lab.rtB().sendEpoch() !== null, ms, 'first epoch on both sides');
    },
    async restartA(edit) {
      await lab.a?.stop();
      if (edit) editFile(files.gwA, edit);
      lab.logA.lines.length = 0;
      lab.a = await Gateway.start(loadGatewayConfig(files.gwA, { checkCertificates: !o.uncheckedCertsA }), { logger: lab.logA, clock: o.clock });
      lab.servicePort = lab.a.addresses.services.web;
      return lab.a;
    },
    async stop() {
      await lab.a?.stop();
      await b.stop();
      await sim.close();
      for (const s of accepted) s.destroy();
      await new Promise((r) => target.close(r));
      await proxy?.close();
    },
  };
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
    // libuv turns a reset that arrives while data is still queued into EOF; the kernel
    // still knows (the socket is in CLOSE, not CLOSE_WAIT). See peerGone().
    s.once('end', () => resolve(!s.writableEnded && peerGone(s) ? { how: 'reset', code: 'ECONNRESET', bytes: bytes(), eofAfterRst: true } : { how: 'eof', bytes: bytes() }));
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
  /** From now on drops every byte both ways and closes nothing (a silent path, BC-31). */
  blackhole(): void;
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
    let severed = false;
    const c: ProxyConn = {
      index: conns.length,
      down,
      up,
      captured: [],
      records: [],
      closed: Promise.all([new Promise((r) => down.once('close', r)), new Promise((r) => up.once('close', r))]).then(() => undefined),
      blackhole() {
        severed = true;
      },
      cut(how) {
        severed = true;
        if (how === 'fin') up.end();
        else up.resetAndDestroy();
        down.destroy();
      },
    };
    conns.push(c);
    let buf: Buffer = Buffer.alloc(0);
    let preambleSent = false;
    down.on('data', (chunk: Buffer) => {
      if (severed) return;
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
        let rec: Buffer = Buffer.from(buf.subarray(0, len));
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
      if (!severed) up.end();
    });
    up.on('data', (chunk: Buffer) => {
      if (severed) return;
      if (!down.write(chunk)) {
        up.pause();
        down.once('drain', () => up.resume());
      }
    });
    up.on('end', () => {
      if (!severed) down.end();
    });
    // A reset on one side is passed on as a reset.
    up.on('close', (hadError) => {
      if (hadError && !severed && !down.destroyed) down.resetAndDestroy();
    });
    down.on('close', (hadError) => {
      if (hadError && !severed && !up.destroyed) up.resetAndDestroy();
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

// ------------------------------------------------------------------ kernel socket table

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT',
  '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING',
};

/** States of every IPv4 TCP socket of this host with `port` at either end (Linux /proc/net/tcp). */
export function tcpStates(port: number): string[] {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const out: string[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    if (f[1].endsWith(hex) || f[2].endsWith(hex)) out.push(TCP_STATES[f[3]] ?? f[3]);
  }
  return out;
}

/** True when no socket on `port` is ESTABLISHED or CLOSE_WAIT (listeners and TIME_WAIT are fine). */
export function noOpenConnections(port: number): boolean {
  return !tcpStates(port).some((s) => s === 'ESTABLISHED' || s === 'CLOSE_WAIT' || s === 'FIN_WAIT2' || s === 'LAST_ACK');
}
