// Helpers for the key-lifecycle integration tests (issue 4): YAML edits for the lab, a
// paced SHA-256-checked echo stream that reports backpressure, an epoch tracker that sees
// every slot change of a PeerRuntime, time-stamped log lines and simulator request
// timelines. Real sockets and real time; nothing here sleeps to let things settle.
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { dial, watchEnd } from '../../helpers/lab.js';
import type { MemoryLogger } from '../../../src/util/logger.js';
import type { PeerRuntime } from '../../../src/tunnel/io/peer.js';
import type { Epoch } from '../../../src/tunnel/core/epochs.js';
import type { KmeSimulator } from '../../../src/kms/simulator/index.js';

// ------------------------------------------------------------------ YAML edits

/** Sets `qkd:` of the generated `policies.default` (the lab writes `qkd: required`). */
export const qkdPolicy =
  (p: 'required' | 'preferred' | 'off') =>
  (y: string): string => {
    if (!/^ {4}qkd: required$/m.test(y)) throw new Error('lab YAML has no `qkd: required` line');
    return y.replace(/^( {4})qkd: required$/m, `$1qkd: ${p}`);
  };

/** Adds members to the `kme:` section: `pool` (keys held ahead), `status_interval`, `timeout`. */
export const kmeSection =
  (o: { pool?: number; statusInterval?: string; timeout?: string }) =>
  (y: string): string => {
    const extra = [
      o.pool === undefined ? '' : `  pool: ${o.pool}\n`,
      o.statusInterval === undefined ? '' : `  status_interval: ${o.statusInterval}\n`,
      o.timeout === undefined ? '' : `  timeout: ${o.timeout}\n`,
    ].join('');
    if (!/^kme:\n/m.test(y)) throw new Error('lab YAML has no kme: section');
    return y.replace(/^kme:\n/m, `kme:\n${extra}`);
  };

/** Applies YAML edits left to right. */
export const edits =
  (...fs: Array<(y: string) => string>) =>
  (y: string): string =>
    fs.reduce((acc, f) => f(acc), y);

// ------------------------------------------------------------------ log lines

export type Line = Record<string, unknown> & { t?: number };

/**
 * Stamps every line pushed from now on with `t` = performance.now() (ms, the clock the
 * gateways use), so tests can measure intervals between logged events.
 */
export function stampLines(log: MemoryLogger): void {
  const lines = log.lines as Line[];
  const push = lines.push.bind(lines);
  lines.push = (...items: Line[]): number => {
    const t = performance.now();
    for (const i of items) i.t = t;
    return push(...items);
  };
}

/** Lines with `event` (and matching `pred`), from index `from` on. */
export function linesOf(log: MemoryLogger, event: string, from = 0, pred: (l: Line) => boolean = () => true): Line[] {
  const out: Line[] = [];
  const ls = log.lines as Line[];
  for (let i = from; i < ls.length; i++) if (ls[i].event === event && pred(ls[i])) out.push(ls[i]);
  return out;
}

/** The number of times `rt` logged the session event `event` (PeerRuntime.events). */
export const eventCount = (rt: PeerRuntime, event: string): number => rt.events.get(event) ?? 0;

// ------------------------------------------------------------------ epochs

/** One slot change seen by an EpochTracker. */
export interface SlotSnapshot {
  t: number;
  current: number | null;
  next: number | null;
  previous: number | null;
}

/**
 * Records every Epoch object a PeerRuntime ever held in a slot (current/next/previous),
 * by number, and each slot change with its time. It re-registers onEpochsChanged after
 * each wake, so it runs synchronously inside the runtime's action loop and misses no
 * short-lived `next` (e.g. one discarded by an ALERT a millisecond later).
 */
export class EpochTracker {
  readonly byNumber = new Map<number, Epoch>();
  /** performance.now() when the epoch was first seen as `current`. */
  readonly currentAt = new Map<number, number>();
  readonly changes: SlotSnapshot[] = [];
  readonly #rt: PeerRuntime;
  #cancel: (() => void) | null = null;
  #stopped = false;

  constructor(rt: PeerRuntime) {
    this.#rt = rt;
    this.#snap();
    this.#arm();
  }

  #arm(): void {
    if (this.#stopped) return;
    this.#cancel = this.#rt.onEpochsChanged(() => {
      this.#snap();
      this.#arm();
    });
  }

  #snap(): void {
    const s = this.#rt.session.slots;
    const t = performance.now();
    for (const e of [s.previous, s.current, s.next]) if (e && !this.byNumber.has(e.n)) this.byNumber.set(e.n, e);
    if (s.current && !this.currentAt.has(s.current.n)) this.currentAt.set(s.current.n, t);
    this.changes.push({ t, current: s.current?.n ?? null, next: s.next?.n ?? null, previous: s.previous?.n ?? null });
  }

  /** Epoch numbers that were ever `current`, ascending. */
  get currents(): number[] {
    return [...this.currentAt.keys()].sort((a, b) => a - b);
  }

  /** Every epoch ever held, ascending by number. */
  get all(): Epoch[] {
    return [...this.byNumber.values()].sort((a, b) => a.n - b.n);
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
  }
}

// ------------------------------------------------------------------ streams

export interface StreamResult {
  sent: number;
  received: number;
  /** Every byte echoed back, in order (SHA-256 of both sides equal, same length). */
  intact: boolean;
  how: string;
  /** Times the writer found the socket full and waited for 'drain'. */
  stalls: number;
}

/** A client flow through the tunnel that writes paced random chunks and checks the echo. */
export interface EchoStream {
  socket: Socket;
  sent(): number;
  received(): number;
  /** True while the writer waits for 'drain' (the tunnel stopped taking bytes). */
  blocked(): boolean;
  /** performance.now() when the current wait for 'drain' began, or null. */
  blockedSince(): number | null;
  /** True once the socket ended or closed. */
  ended(): boolean;
  /** Stops writing, half-closes, waits for the echo's end and compares hashes. */
  finish(): Promise<StreamResult>;
}

/**
 * Opens a flow to `port` (the gw-a service `web`, echoed by the lab's target) and writes
 * `chunk` random bytes every `tickMs` ms (both directions then carry about chunk/tickMs
 * bytes per ms) until finish(). A full socket (write() false) makes the writer wait for
 * 'drain', which is how a held tunnel shows at the client.
 */
export async function startEchoStream(port: number, o: { chunk?: number; tickMs?: number } = {}): Promise<EchoStream> {
  const chunk = o.chunk ?? 16 * 1024;
  const tickMs = o.tickMs ?? 5;
  const s = await dial(port);
  const sentHash = createHash('sha256');
  const recvHash = createHash('sha256');
  let sent = 0;
  let received = 0;
  let stalls = 0;
  let waitingSince: number | null = null;
  let stop = false;
  let isEnded = false;
  s.on('data', (c: Buffer) => {
    recvHash.update(c);
    received += c.length;
  });
  const ended = watchEnd(s, () => received).then((x) => {
    isEnded = true;
    return x;
  });
  const writer = (async () => {
    while (!stop && !s.destroyed && !isEnded) {
      const c = randomBytes(chunk);
      sentHash.update(c);
      sent += c.length;
      if (!s.write(c)) {
        stalls++;
        waitingSince = performance.now();
        await new Promise<void>((r) => {
          const done = (): void => {
            s.off('drain', done);
            s.off('close', done);
            r();
          };
          s.on('drain', done);
          s.on('close', done);
        });
        waitingSince = null;
      }
      await new Promise((r) => setTimeout(r, tickMs));
    }
  })();
  return {
    socket: s,
    sent: () => sent,
    received: () => received,
    blocked: () => waitingSince !== null,
    blockedSince: () => waitingSince,
    ended: () => isEnded,
    async finish() {
      stop = true;
      await writer;
      s.end();
      const r = await ended;
      return { sent, received, intact: r.how === 'eof' && sent === received && sentHash.digest('hex') === recvHash.digest('hex'), how: r.how, stalls };
    },
  };
}

// ------------------------------------------------------------------ simulator

/** Requests KME `kme` answered on `endpoint`, by HTTP status (`"200"`, `"503"`, `"stalled"`). */
export function requestsAt(sim: KmeSimulator, kme: string, endpoint: 'status' | 'enc_keys' | 'dec_keys'): Record<string, number> {
  return { ...(sim.control.state().requests[kme]?.[endpoint] ?? {}) };
}

/** Sum over all statuses of requestsAt. */
export function totalRequests(sim: KmeSimulator, kme: string, endpoint: 'status' | 'enc_keys' | 'dec_keys'): number {
  return Object.values(requestsAt(sim, kme, endpoint)).reduce((a, b) => a + b, 0);
}

/**
 * Samples the simulator's request counter of (kme, endpoint) every `everyMs` ms and
 * stamps each increase with performance.now(): `times` gets one entry per request (two
 * requests answered within one sample get the same stamp, i.e. a gap of 0).
 */
export function requestTimeline(sim: KmeSimulator, kme: string, endpoint: 'status' | 'enc_keys' | 'dec_keys', everyMs = 5): { times: number[]; stop(): void } {
  const times: number[] = [];
  let last = totalRequests(sim, kme, endpoint);
  const iv = setInterval(() => {
    const n = totalRequests(sim, kme, endpoint);
    const t = performance.now();
    for (; last < n; last++) times.push(t);
  }, everyMs);
  return { times, stop: () => clearInterval(iv) };
}

// ------------------------------------------------------------------ sampling

/**
 * Samples `read()` every `everyMs` ms with performance.now() stamps, so a test can ask
 * afterwards what a counter (e.g. bytes at the target) was at a logged time.
 */
export function sampler(read: () => number, everyMs = 50): { at(t: number): number; stop(): void } {
  const points: Array<[number, number]> = [[performance.now(), read()]];
  const iv = setInterval(() => points.push([performance.now(), read()]), everyMs);
  return {
    /** The last sample taken at or before `t` (the first sample when `t` is earlier). */
    at(t: number): number {
      let v = points[0][1];
      for (const [pt, pv] of points) {
        if (pt > t) break;
        v = pv;
      }
      return v;
    },
    stop: () => clearInterval(iv),
  };
}
