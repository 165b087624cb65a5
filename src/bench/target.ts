/**
 * The benchmark's target behind gateway B: a plain TCP sink/source. Each connection
 * starts with a fixed header from the client that says what to do:
 *
 *   op (1 byte: 'U' upload = count what follows, 'D' download = send)
 *   maxBytes (u64 BE, bytes)  maxMs (u32 BE, ms)    -- used by 'D' only
 *
 * 'U': counts every byte after the header until the client's FIN, timing the first and
 * the last byte as they arrive here, then half-closes back.
 * 'D': sends until maxBytes are sent or maxMs have passed, whichever comes first, then
 * half-closes; the client times what it receives.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { pump, type Received } from './stream.js';

export const HEADER_LEN = 13;

/** Encodes the flow header; maxBytes <= 2^53-1, maxMs <= 2^32-1. */
export function flowHeader(op: 'U' | 'D', maxBytes = 0, maxMs = 0): Buffer {
  const h = Buffer.alloc(HEADER_LEN);
  h.write(op, 0, 'latin1');
  h.writeBigUInt64BE(BigInt(maxBytes), 1);
  h.writeUInt32BE(maxMs, 9);
  return h;
}

export type TargetResult = { op: 'U'; received: Received } | { op: 'D'; sent: number };

export interface BenchTarget {
  server: Server;
  port: number;
  /**
   * Resolves with the result of the next finished connection, in order of completion:
   * what an upload received, or how many bytes a download sent. Rejects when that
   * connection failed.
   */
  nextResult(): Promise<TargetResult>;
  close(): Promise<void>;
}

/** Starts the sink/source on 127.0.0.1, port chosen by the OS. */
export async function startBenchTarget(): Promise<BenchTarget> {
  const done: Array<TargetResult | Error> = [];
  const waiting: Array<{ resolve: (r: TargetResult) => void; reject: (e: Error) => void }> = [];
  const sockets = new Set<Socket>();
  const settle = (r: TargetResult | Error): void => {
    const w = waiting.shift();
    if (!w) done.push(r);
    else if (r instanceof Error) w.reject(r);
    else w.resolve(r);
  };

  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.setNoDelay(true);
    let head = Buffer.alloc(0);
    let r: Received | null = null;
    let finished = false;
    const finishUpload = (err?: Error): void => {
      if (finished) return;
      finished = true;
      if (err) {
        settle(new Error(`target: upload connection failed after ${r?.bytes ?? 0} bytes: ${err.message}`));
        s.destroy();
        return;
      }
      settle({ op: 'U', received: r ?? { bytes: 0, firstNs: 0n, lastNs: 0n } });
      s.end();
    };
    const onData = (c: Buffer): void => {
      const now = process.hrtime.bigint();
      head = Buffer.concat([head, c]);
      if (head.length < HEADER_LEN) return;
      const op = String.fromCharCode(head[0]);
      const rest = head.subarray(HEADER_LEN);
      if (op === 'U') {
        const u: Received = { bytes: rest.length, firstNs: rest.length > 0 ? now : 0n, lastNs: now };
        // From here on only count: replace the parsing handler with a cheap one.
        s.off('data', onData);
        r = u;
        s.on('data', (d: Buffer) => {
          const t = process.hrtime.bigint();
          if (u.bytes === 0) u.firstNs = t;
          u.bytes += d.length;
          u.lastNs = t;
        });
        s.once('end', () => finishUpload());
        s.once('error', (e) => finishUpload(e));
        s.once('close', () => finishUpload(new Error('closed without FIN')));
        return;
      }
      if (op === 'D') {
        s.off('data', onData);
        const maxBytes = Number(head.readBigUInt64BE(1));
        const maxMs = head.readUInt32BE(9);
        s.on('error', () => s.destroy());
        s.on('end', () => undefined);
        void pump(s, maxBytes, maxMs).then(
          (sent) => {
            settle({ op: 'D', sent });
            s.end();
          },
          (e: Error) => {
            settle(new Error(`target: download connection failed: ${e.message}`));
            s.destroy();
          },
        );
        return;
      }
      settle(new Error(`target: unknown flow op 0x${head[0].toString(16)}`));
      s.destroy();
    };
    s.on('data', onData);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    nextResult: () => {
      const r = done.shift();
      if (r instanceof Error) return Promise.reject(r);
      if (r) return Promise.resolve(r);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
