/**
 * One control connection (protocol.md s2): frames in and out of a TLS 1.3 socket, the
 * exporter, and liveness (PING after 10 s with nothing sent; dead after 30 s with nothing
 * received). It knows nothing of handshakes: the PeerRuntime feeds what it reads to the
 * session core.
 */
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { ControlFrameReader, encodeControl, type ControlMessage } from '../core/wire/control.js';
import { Spec } from '../core/constants.js';

let connSeq = 0;

export interface ControlConnHandlers {
  message(conn: ControlConn, msg: ControlMessage): void;
  malformed(conn: ControlConn, reason: string): void;
  closed(conn: ControlConn, reason: string): void;
}

export interface ControlConnOptions {
  clock: Clock;
  logger: Logger;
  pingAfterMs?: number;
  deadAfterMs?: number;
}

export class ControlConn {
  readonly id = ++connSeq;
  /** TLS exporter, label EXPERIMENTAL-qkdgw-v1, empty context, 32 bytes (protocol.md s2). */
  readonly exporter: Buffer;
  readonly remote: string;
  #socket: TLSSocket;
  #reader = new ControlFrameReader();
  #handlers: ControlConnHandlers | null = null;
  #closed = false;
  #lastSent: number;
  #lastRecv: number;
  #cancelTimer: (() => void) | null = null;
  #pingSeq = 0;
  readonly #o: Required<ControlConnOptions>;
  readonly #backlog: Buffer[] = [];

  constructor(socket: TLSSocket, opts: ControlConnOptions) {
    this.#socket = socket;
    this.#o = { pingAfterMs: Spec.PING_AFTER_MS, deadAfterMs: Spec.DEAD_AFTER_MS, ...opts };
    this.exporter = socket.exportKeyingMaterial(Spec.EXPORTER_LEN, Spec.EXPORTER_LABEL, Buffer.alloc(0));
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#lastSent = this.#lastRecv = opts.clock.now();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#lastRecv = this.#o.clock.now();
      if (!this.#handlers) {
        this.#backlog.push(chunk);
        return;
      }
      this.#feed(chunk);
    });
    socket.on('error', (e) => this.#end(`socket error: ${e.message}`));
    socket.on('close', () => this.#end('connection closed'));
    socket.on('end', () => this.#end('peer closed the connection'));
  }

  /** Starts delivering frames to `h` (frames that arrived before are replayed first). */
  start(h: ControlConnHandlers): void {
    this.#handlers = h;
    for (const c of this.#backlog.splice(0)) this.#feed(c);
    this.#schedule();
  }

  #feed(chunk: Buffer): void {
    if (this.#closed) return;
    let msgs: ControlMessage[];
    try {
      msgs = this.#reader.push(chunk);
    } catch (e) {
      this.#handlers!.malformed(this, (e as Error).message);
      return;
    }
    for (const m of msgs) {
      if (this.#closed) return;
      this.#handlers!.message(this, m);
    }
  }

  send(msg: ControlMessage): void {
    if (this.#closed) return;
    this.#lastSent = this.#o.clock.now();
    this.#socket.write(encodeControl(msg));
  }

  /** Closes after flushing what was written (a fatal ALERT goes out first). */
  close(reason: string): void {
    if (this.#closed) return;
    this.#socket.end();
    // A peer that never reads cannot keep the socket: destroy after a short flush window.
    const t = setTimeout(() => this.#socket.destroy(), 1_000);
    t.unref();
    this.#end(reason);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelTimer?.();
    if (!this.#socket.destroyed && !this.#socket.writableEnded) this.#socket.destroy();
    this.#handlers?.closed(this, reason);
  }

  #schedule(): void {
    this.#cancelTimer?.();
    if (this.#closed) return;
    const now = this.#o.clock.now();
    const pingAt = this.#lastSent + this.#o.pingAfterMs;
    const deadAt = this.#lastRecv + this.#o.deadAfterMs;
    this.#cancelTimer = this.#o.clock.setTimer(Math.max(0, Math.min(pingAt, deadAt) - now) + 1, () => this.#onTimer());
  }

  #onTimer(): void {
    if (this.#closed) return;
    const now = this.#o.clock.now();
    if (now - this.#lastRecv >= this.#o.deadAfterMs) {
      this.#o.logger.warn({ event: 'control_dead', conn: this.id, silent_ms: Math.round(now - this.#lastRecv) }, 'control peer silent: closing');
      this.close('liveness timeout');
      return;
    }
    if (now - this.#lastSent >= this.#o.pingAfterMs) this.send({ type: 'PING', id: ++this.#pingSeq });
    this.#schedule();
  }
}
