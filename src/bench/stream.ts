/**
 * Moving and counting bytes on one TCP socket for the benchmark, with timestamps from
 * `process.hrtime.bigint()` (ns, monotonic).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';

/** What a receiver saw: byte count and the arrival times of the first and last byte (ns). */
export interface Received {
  bytes: number;
  firstNs: bigint;
  lastNs: bigint;
}

/** Random payload written over and over; 256 KiB per write keeps the syscall count low. */
export const PAYLOAD = randomBytes(256 * 1024);

/**
 * Writes PAYLOAD slices to `s` with backpressure until `maxBytes` bytes are written or
 * `maxMs` ms have passed since the first write, whichever comes first. Does not end `s`.
 * @returns bytes written (accepted by the socket).
 * @throws the socket's error, or an Error when it closes before the bound is reached.
 */
export function pump(s: Socket, maxBytes: number, maxMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(maxMs) * 1_000_000n;
    let settled = false;
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      s.off('drain', more);
      reject(e);
    };
    const onError = (e: Error): void => fail(e);
    const onClose = (): void => fail(new Error(`connection closed after ${sent} of up to ${maxBytes} bytes were written`));
    s.once('error', onError);
    s.once('close', onClose);
    function more(): void {
      if (settled) return;
      for (;;) {
        if (sent >= maxBytes || process.hrtime.bigint() >= deadline) {
          settled = true;
          s.off('error', onError);
          s.off('close', onClose);
          resolve(sent);
          return;
        }
        const n = Math.min(PAYLOAD.length, maxBytes - sent);
        sent += n;
        if (!s.write(n === PAYLOAD.length ? PAYLOAD : PAYLOAD.subarray(0, n))) {
          s.once('drain', more);
          return;
        }
      }
    }
    more();
  });
}

/**
 * Counts what arrives on `s` until its FIN ('end').
 * @throws the socket's error, or an Error when it closes without a FIN.
 */
export function receive(s: Socket): Promise<Received> {
  return new Promise((resolve, reject) => {
    const r: Received = { bytes: 0, firstNs: 0n, lastNs: 0n };
    let settled = false;
    s.on('data', (c: Buffer) => {
      const t = process.hrtime.bigint();
      if (r.bytes === 0) r.firstNs = t;
      r.bytes += c.length;
      r.lastNs = t;
    });
    s.once('end', () => {
      settled = true;
      resolve(r);
    });
    s.once('error', (e) => {
      if (settled) return;
      settled = true;
      reject(new Error(`receiving failed after ${r.bytes} bytes: ${e.message}`));
    });
    s.once('close', () => {
      if (settled) return;
      settled = true;
      reject(new Error(`connection closed without FIN after ${r.bytes} bytes`));
    });
  });
}

/** 10^6 bytes per second from the first to the last byte; NaN when under two arrivals. */
export function megabytesPerSecond(r: Received): number {
  const ns = Number(r.lastNs - r.firstNs);
  if (!(ns > 0)) return Number.NaN;
  return r.bytes / 1e6 / (ns / 1e9);
}
