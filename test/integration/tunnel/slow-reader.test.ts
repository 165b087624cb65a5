// BC-30: backpressure end to end. A backend streams 64 MiB as fast as its socket takes it;
// the client reads 64 KiB, stops reading for 2.5 s, then reads the rest. Neither gateway may
// buffer more than a bounded amount, the backend must be stalled while the client does
// not read, and every byte arrives intact.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { startLab, dial } from '../../helpers/lab.js';
import { carrierLinksOf } from '../../../src/tunnel/io/carrier-link.js';
import type { PeerRuntime } from '../../../src/tunnel/io/peer.js';

const BLOCKS = 64;
const BLOCK = 1 << 20;
const PAUSE_MS = 2_500;
/** Per gateway: a few records and socket high-water marks, far below the 64 MiB stream. */
const BOUND = 1 << 20;

function held(rt: PeerRuntime): number {
  let n = 0;
  for (const l of carrierLinksOf(rt)) {
    const b = l.buffered;
    n += b.carrierOut + b.localOut + b.carrierIn + b.localIn + b.partialRecord + b.pending;
  }
  return n;
}

t.test('BC-30 slow reader: bounded buffering in both gateways, SHA-256 of 64 MiB intact', async (t) => {
  const base = randomBytes(BLOCK);
  const sent = createHash('sha256');
  let written = 0;
  let targetDone = false;
  const backend = (s: Socket): void => {
    let i = 0;
    const pump = (): void => {
      while (i < BLOCKS) {
        const idx = Buffer.alloc(4);
        idx.writeUInt32BE(i++);
        sent.update(idx).update(base);
        written += 4 + BLOCK;
        s.write(idx);
        if (!s.write(base)) return void s.once('drain', pump);
      }
      s.end();
      targetDone = true;
    };
    pump();
  };
  const lab = await startLab(t, { onTarget: backend });
  await lab.ready();
  const rss0 = process.memoryUsage().rss;

  const peak = { a: 0, b: 0, rss: 0 };
  const sample = (): void => {
    peak.a = Math.max(peak.a, held(lab.rtA()));
    peak.b = Math.max(peak.b, held(lab.rtB()));
    peak.rss = Math.max(peak.rss, process.memoryUsage().rss - rss0);
  };
  const sampler = setInterval(sample, 5);
  t.teardown(() => clearInterval(sampler));

  const c = await dial(lab.servicePort);
  const got = createHash('sha256');
  let received = 0;
  const paused = new Promise<void>((resolve) => {
    const onData = (chunk: Buffer): void => {
      got.update(chunk);
      received += chunk.length;
      if (received >= 64 * 1024) {
        c.pause();
        c.off('data', onData);
        resolve();
      }
    };
    c.on('data', onData);
  });
  await paused;
  const atPause = received;
  // The slow reader: nothing read for PAUSE_MS (this wait models the reader, it settles nothing).
  await new Promise((r) => setTimeout(r, PAUSE_MS - 1_000));
  const writtenLate = written;
  await new Promise((r) => setTimeout(r, 1_000));
  const writtenEnd = written;
  t.equal(received, atPause, 'the client read nothing during its pause');
  t.equal(writtenEnd, writtenLate, 'the backend is stalled: no progress in the last second of the pause');
  t.notOk(targetDone, 'the backend could not finish while the client did not read');
  t.ok(writtenEnd < (BLOCKS * (BLOCK + 4)) / 2, `backend wrote only ${(writtenEnd / 2 ** 20).toFixed(1)} MiB (kernel buffers) before stalling`);

  const done = new Promise<void>((resolve, reject) => {
    c.on('data', (chunk: Buffer) => {
      got.update(chunk);
      received += chunk.length;
    });
    c.once('end', resolve);
    c.once('error', reject);
  });
  c.resume();
  await done;
  clearInterval(sampler);
  sample();
  t.equal(received, BLOCKS * (BLOCK + 4), 'every byte arrived');
  t.equal(got.digest('hex'), sent.digest('hex'), 'SHA-256 of all bytes matches');
  t.ok(peak.a < BOUND, `gw-a (entry, slow client) held at most ${peak.a} bytes (bound ${BOUND})`);
  t.ok(peak.b < BOUND, `gw-b (exit, fast backend) held at most ${peak.b} bytes (bound ${BOUND})`);
  // One process holds both gateways, the backend and the client, and 64 MiB passes through
  // it several times as short-lived buffers: BC-30's per-gateway 64 MiB, twice.
  t.ok(peak.rss < 128 * 2 ** 20, `process RSS grew by at most ${(peak.rss / 2 ** 20).toFixed(1)} MiB (bound 2 x 64 MiB)`);
  c.end();
});
