// Two PeerSessions wired back to back with an in-memory "network" and an in-memory KME
// pair, driven by a ManualClock. No sockets: this exercises the core state machine only.
import { randomBytes, randomUUID } from 'node:crypto';
import { PeerSession, type SessionAction, type SessionOptions, type ConnId } from '../../src/tunnel/core/session.js';
import type { ControlMessage } from '../../src/tunnel/core/wire/control.js';
import { SecretBytes } from '../../src/util/secret.js';
import { ManualClock } from '../../src/util/clock.js';

export const basePolicy = {
  suites: [1, 2] as Array<1 | 2>,
  qkd: 'required' as const,
  rekeyAfterTimeMs: 120_000,
  rekeyJitterMs: 0,
  rekeyAfterRecords: 2 ** 24,
  rekeyAfterBytes: 64 * 2 ** 30,
  hardLimitTimeMs: 180_000,
  hardLimitRecords: 2 ** 25,
  handshakeTimeoutMs: 5_000,
  graceMs: 10_000,
  carrierHoldMs: 300_000,
  maxFlowsPerEpoch: 2 ** 20,
};

export interface Side {
  s: PeerSession;
  name: 'A' | 'B';
  log: Array<Extract<SessionAction, { type: 'log' }>>;
  actions: SessionAction[];
}

/** A = "gw-a" (initiator), B = "gw-b" (responder). */
export class Pair {
  readonly clock = new ManualClock(1_000);
  readonly A: Side;
  readonly B: Side;
  /** Pending key fetches, answered by pump() unless `holdKeys`. */
  readonly kme = new Map<string, Buffer>();
  encCalls = 0;
  decCalls = 0;
  holdKeys = false;
  /** enc_keys fails at once with this code (KME empty, down ...), or null. */
  encFail: string | null = null;
  /** dec_keys fails at once (the slave answers ALERT key_unavailable). */
  decFail = false;
  /** Replace bytes delivered to the slave (the mismatched-key fault). */
  tamperSlaveKey = false;
  /** Drop messages for which this returns true. */
  drop: (from: 'A' | 'B', m: ControlMessage) => boolean = () => false;
  /** conn ids of the current link at A and B; null when down. */
  link: { a: ConnId; b: ConnId } | null = null;
  #connSeq = 1;
  readonly wire: Array<{ from: 'A' | 'B'; msg: ControlMessage }> = [];
  readonly #queue: Array<() => void> = [];

  constructor(a: Partial<SessionOptions> = {}, b: Partial<SessionOptions> = {}) {
    this.A = this.#side('A', { ...basePolicy, selfId: 'gw-a', peerId: 'gw-b', receiverIndex: 0x0a0a0a0a, random: () => 0.5, ...a });
    this.B = this.#side('B', { ...basePolicy, selfId: 'gw-b', peerId: 'gw-a', receiverIndex: 0x0b0b0b0b, random: () => 0.5, ...b });
  }

  #side(name: 'A' | 'B', o: SessionOptions): Side {
    return { s: new PeerSession(o), name, log: [], actions: [] };
  }

  restart(name: 'A' | 'B', o: Partial<SessionOptions> = {}): void {
    const old = this[name];
    const fresh = this.#side(name, { ...old.s.opts, ...o });
    (this as unknown as Record<string, Side>)[name] = fresh;
  }

  other(x: Side): Side {
    return x === this.A ? this.B : this.A;
  }

  /** Opens a control connection: both sides get conn-up with one shared exporter. */
  connect(): void {
    const exporter = randomBytes(32);
    const a = this.#connSeq++;
    const b = this.#connSeq++;
    this.link = { a, b };
    this.feed(this.A, { type: 'conn-up', conn: a, exporter });
    this.feed(this.B, { type: 'conn-up', conn: b, exporter });
    this.pump();
  }

  disconnect(): void {
    if (!this.link) return;
    const { a, b } = this.link;
    this.link = null;
    this.feed(this.A, { type: 'conn-down', conn: a });
    this.feed(this.B, { type: 'conn-down', conn: b });
    this.pump();
  }

  feed(side: Side, ev: Parameters<PeerSession['handle']>[0]): void {
    this.#run(side, side.s.handle(ev, this.clock.now()));
  }

  /** Executes actions a data-plane query (noteSealed, admitFlow ...) returned, as the shell would. */
  apply(side: Side, acts: SessionAction[]): void {
    this.#run(side, acts);
  }

  #run(side: Side, acts: SessionAction[]): void {
    for (const act of acts) {
      side.actions.push(act);
      switch (act.type) {
        case 'log':
          side.log.push(act);
          break;
        case 'send': {
          const from = side.name;
          const link = this.link;
          if (!link || act.conn !== (from === 'A' ? link.a : link.b)) break;
          this.wire.push({ from, msg: act.msg });
          if (this.drop(from, act.msg)) break;
          const to = this.other(side);
          const conn = from === 'A' ? link.b : link.a;
          this.#queue.push(() => {
            if (this.link === link) this.feed(to, { type: 'message', conn, msg: act.msg });
          });
          break;
        }
        case 'close': {
          const link = this.link;
          if (link && act.conn === (side.name === 'A' ? link.a : link.b)) this.#queue.push(() => this.disconnect());
          break;
        }
        case 'get-key': {
          this.encCalls++;
          if (this.holdKeys) break;
          if (this.encFail) {
            const code = this.encFail;
            this.#queue.push(() => this.feed(side, { type: 'key-failed', hs: act.hs, code, message: 'injected' }));
            break;
          }
          const keyId = randomUUID();
          const key = randomBytes(32);
          this.kme.set(keyId, key);
          this.#queue.push(() => this.feed(side, { type: 'key', hs: act.hs, keyId, key: SecretBytes.from(key) }));
          break;
        }
        case 'get-key-by-id': {
          this.decCalls++;
          const k = this.decFail ? undefined : this.kme.get(act.keyId);
          this.kme.delete(act.keyId);
          this.#queue.push(() =>
            k
              ? this.feed(side, { type: 'key', hs: act.hs, keyId: act.keyId, key: SecretBytes.from(this.tamperSlaveKey ? randomBytes(32) : k) })
              : this.feed(side, { type: 'key-failed', hs: act.hs, code: 'QKDGW_E_KMS_KEY_UNAVAILABLE', message: 'not found' }),
          );
          break;
        }
        default:
          break;
      }
    }
  }

  /** Delivers queued messages and key answers until quiet. */
  pump(): void {
    let n = 0;
    while (this.#queue.length) {
      if (++n > 10_000) throw new Error('pump did not settle');
      this.#queue.shift()!();
    }
  }

  /** Advances time, ticking both sessions at each deadline; throws if a deadline never clears (busy loop). */
  advance(ms: number): void {
    const end = this.clock.now() + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      const due = [this.A.s.nextDeadline(), this.B.s.nextDeadline()].filter((d): d is number => d !== null && d <= end);
      if (!due.length) {
        this.clock.advance(end - this.clock.now());
        return;
      }
      const t = Math.max(this.clock.now(), Math.min(...due));
      this.clock.advance(t - this.clock.now());
      this.feed(this.A, { type: 'tick' });
      this.feed(this.B, { type: 'tick' });
      this.pump();
    }
    throw new Error('advance did not settle: a deadline never clears');
  }

  events(side: Side, event: string): Array<Record<string, unknown>> {
    return side.log.filter((l) => l.event === event).map((l) => l.fields);
  }
}
