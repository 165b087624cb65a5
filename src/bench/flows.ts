/**
 * One measured flow from the client side: upload (client -> target) or download
 * (target -> client), on any port that leads to the bench target (the target itself
 * for the direct path, gateway A's service port for the tunnel).
 */
import { connect, type Socket } from 'node:net';
import type { BenchTarget } from './target.js';
import { flowHeader } from './target.js';
import { megabytesPerSecond, pump, receive, type Received } from './stream.js';

export type Direction = 'upload' | 'download';

export interface FlowBounds {
  /** Most bytes sent, bytes. */
  maxBytes: number;
  /** Most sending time, ms. */
  maxMs: number;
}

export interface FlowResult {
  direction: Direction;
  /** Bytes the sender handed to its socket. */
  sent: number;
  /** What the receiving end saw (the target for uploads, the client for downloads). */
  received: Received;
  /** 10^6 bytes/s, first to last byte at the receiver. */
  mbps: number;
}

/** Slack past the sending bound before a flow counts as stalled, ms. */
const STALL_SLACK_MS = 60_000;

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.setNoDelay(true);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * Runs one flow through `port` and checks that the receiver got every byte sent.
 * @param abort rejects when the run must stop (a lab process died); raced with the flow.
 * @throws Error naming the flow when it fails, stalls past the bound + 60 s, or loses bytes.
 */
export async function runFlow(what: string, direction: Direction, port: number, target: BenchTarget, bounds: FlowBounds, abort: Promise<never>): Promise<FlowResult> {
  let sock: Socket | null = null;
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no end within ${(bounds.maxMs + STALL_SLACK_MS) / 1000} s`)), bounds.maxMs + STALL_SLACK_MS);
  });
  const flow = async (): Promise<FlowResult> => {
    const s = await open(port);
    sock = s;
    if (direction === 'upload') {
      s.write(flowHeader('U'));
      // The target half-closes once it has counted our FIN; drain that so the socket can end.
      const back = receive(s);
      // Awaited only after pump; a reset before then must not become an unhandled rejection.
      back.catch(() => undefined);
      const sent = await pump(s, bounds.maxBytes, bounds.maxMs);
      s.end();
      const r = await target.nextResult();
      await back;
      if (r.op !== 'U') throw new Error('target reported a download for an upload');
      if (r.received.bytes !== sent) throw new Error(`sent ${sent} bytes, target received ${r.received.bytes}`);
      return { direction, sent, received: r.received, mbps: megabytesPerSecond(r.received) };
    }
    const got = receive(s);
    s.write(flowHeader('D', bounds.maxBytes, bounds.maxMs));
    const received = await got;
    s.end();
    const r = await target.nextResult();
    if (r.op !== 'D') throw new Error('target reported an upload for a download');
    if (received.bytes !== r.sent) throw new Error(`target sent ${r.sent} bytes, client received ${received.bytes}`);
    return { direction, sent: r.sent, received, mbps: megabytesPerSecond(received) };
  };
  try {
    return await Promise.race([flow(), stalled, abort]);
  } catch (e) {
    throw new Error(`${what} ${direction}: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
    (sock as Socket | null)?.destroy();
  }
}
