// Issue 4 soak (bounded for CI): a rekey every second for 60 s while 4 flows stream data
// through the tunnel in both directions (echo). Zero bytes lost or corrupted, zero flows
// reset, memory stable. Real gateways, real simulator, real sockets, real time.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startLab, dial, watchEnd } from '../helpers/lab.js';

const SOAK_MS = Number(process.env.QKDGW_SOAK_MS ?? 60_000);
const FLOWS = 4;
const CHUNK = 16 * 1024;
/** Per flow: one chunk every TICK_MS while the socket takes it (about 1.6 MB/s each way). */
const TICK_MS = 10;

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

interface FlowResult {
  sent: number;
  received: number;
  intact: boolean;
  how: string;
}

/** Streams random chunks until `stopAt`, then half-closes; checks the echo byte for byte. */
async function streamFlow(port: number, stopAt: () => boolean): Promise<FlowResult> {
  const s = await dial(port);
  const sentHash = createHash('sha256');
  const recvHash = createHash('sha256');
  let sent = 0;
  let received = 0;
  s.on('data', (c: Buffer) => {
    recvHash.update(c);
    received += c.length;
  });
  const ended = watchEnd(s, () => received);
  while (!stopAt() && !s.destroyed) {
    const c = randomBytes(CHUNK);
    sentHash.update(c);
    sent += c.length;
    if (!s.write(c)) await new Promise((r) => s.once('drain', r));
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
  s.end();
  const o = await ended;
  return { sent, received, intact: sent === received && sentHash.digest('hex') === recvHash.digest('hex'), how: o.how };
}

t.test(`soak: rekey every 1 s for ${SOAK_MS / 1000} s with ${FLOWS} streaming flows`, { timeout: SOAK_MS + 60_000 }, async (t) => {
  const lab = await startLab(t, { rekeyAfterTime: '1s', rekeyJitter: '0s', handshakeTimeout: '2s', hardLimitTime: '10s', grace: '3s' });
  await lab.ready();
  const first = lab.rtA().session.slots.current!.n;
  const start = Date.now();
  const stopAt = (): boolean => Date.now() - start >= SOAK_MS;

  // Memory is sampled after a warm-up, and again at the end: the growth must stay small.
  let heapWarm = 0;
  const warm = setTimeout(() => (heapWarm = heapAfterGc()), Math.min(10_000, SOAK_MS / 4));
  const results = await Promise.all(Array.from({ length: FLOWS }, () => streamFlow(lab.servicePort, stopAt)));
  clearTimeout(warm);
  const heapEnd = heapAfterGc();

  const epochs = lab.rtA().session.slots.current!.n - first;
  const total = results.reduce((n, r) => n + r.sent, 0);
  t.ok(epochs >= Math.floor(SOAK_MS / 1000) * 0.8, `${epochs} rekeys in ${SOAK_MS / 1000} s (about one per second)`);
  t.ok(total > 0, `${(total / 2 ** 20).toFixed(0)} MiB sent and echoed over ${FLOWS} flows`);
  t.same(
    results.map((r) => ({ intact: r.intact, how: r.how })),
    results.map(() => ({ intact: true, how: 'eof' })),
    'every flow: every byte back intact, clean EOF, no reset',
  );
  t.equal(lab.rtA().stats.carrierAborts + lab.rtB().stats.carrierAborts, 0, 'zero carrier aborts');
  t.equal(lab.rtA().stats.authFailures + lab.rtB().stats.authFailures, 0, 'zero authentication failures');
  t.equal(lab.rtA().stats.handshakeFailures + lab.rtB().stats.handshakeFailures, 0, 'zero failed handshakes');
  const growth = heapEnd - heapWarm;
  t.ok(heapWarm > 0 && growth < 32 * 2 ** 20, `heap after GC: ${(heapWarm / 2 ** 20).toFixed(1)} MiB after warm-up, ${(heapEnd / 2 ** 20).toFixed(1)} MiB at the end (growth < 32 MiB)`);
  const retired = lab.rtA().session.slots.retired.size + lab.rtB().session.slots.retired.size;
  t.ok(retired <= 4, `retired epochs do not pile up (${retired} still pinned)`);
});
