// protocol.md s5.1: a wrong magic, version or reserved value, or an unknown
// receiver_index, closes a carrier at once (counted); garbage after a valid preamble is a
// malformed record and closes it too. The gateway keeps serving good flows throughout.
// Protocol time runs 10x faster (FastClock) so that the 10 s preamble deadline takes 1 s.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { startLab, dial, collect, sha256, FastClock, type Lab } from '../../helpers/lab.js';

function preamble(index: number, patch: (b: Buffer) => void = () => undefined): Buffer {
  const b = Buffer.alloc(28);
  b.write('QGW1', 0, 'ascii');
  b[4] = 1;
  b.writeUInt32BE(index >>> 0, 8);
  randomBytes(16).copy(b, 12);
  patch(b);
  return b;
}

function header(type: number, ctLen: number, patch: (b: Buffer) => void = () => undefined): Buffer {
  const h = Buffer.alloc(20);
  h[0] = type;
  h.writeUInt32BE(1, 4);
  h.writeUInt32BE(ctLen, 16);
  patch(h);
  return h;
}

/** Opens a raw connection to gw-b's data port; resolves when the gateway closed it. */
async function probe(lab: Lab, feed: (s: Socket) => void | Promise<void>): Promise<{ ms: number; got: number; how: string }> {
  const s = connect({ host: '127.0.0.1', port: lab.dataPort });
  s.on('error', () => undefined);
  await new Promise((r) => s.once('connect', r));
  const start = Date.now();
  const out = collect(s);
  await feed(s);
  const o = await out;
  if (!s.destroyed) await new Promise((r) => s.once('close', r));
  return { ms: Date.now() - start, got: o.bytes, how: o.how };
}

async function echoWorks(lab: Lab): Promise<boolean> {
  const c = await dial(lab.servicePort);
  const out = collect(c);
  const p = randomBytes(40_000);
  c.end(p);
  const r = await out;
  return r.how === 'eof' && sha256(r.data) === sha256(p);
}

t.test('bad preambles and garbage on the data port: each connection closed, the gateway keeps serving', async (t) => {
  const clock = new FastClock(10);
  const lab = await startLab(t, { clock });
  await lab.ready();
  const index = lab.rtA().session.peerReceiverIndex!;
  t.ok(index > 0, 'gw-b gave gw-a a receiver_index');
  const epoch = lab.rtB().session.slots.current!.n;

  // A slowloris: a plausible preamble dripped 1 byte per write, one every 0.5 protocol
  // seconds, would need 14 s; the deadline is 10 s from accept.
  const dripFrom = clock.now();
  const drip = probe(lab, async (s) => {
    const p = preamble(index);
    for (let i = 0; i < p.length && !s.destroyed; i++) {
      s.write(p.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 500 / clock.factor));
    }
  });

  const cases: Array<[string, Buffer | Buffer[] | 'fin']> = [
    ['wrong magic', preamble(index, (b) => b.write('QGW2', 0, 'ascii'))],
    ['wrong version', preamble(index, (b) => (b[4] = 2))],
    ['reserved u8 set', preamble(index, (b) => (b[5] = 1))],
    ['reserved u16 set', preamble(index, (b) => b.writeUInt16BE(0x0100, 6))],
    ['receiver_index 0', preamble(0)],
    ['unknown receiver_index', preamble(index ^ 0x5a5a5a5a)],
    ['28 bytes of garbage', Buffer.concat([Buffer.from([0xff]), randomBytes(27)])],
    ['an HTTP request (shorter than a preamble)', Buffer.from('GET / HTTP/1.0\r\n\r\n')],
    ['a TLS ClientHello start', Buffer.from('160301020001', 'hex')],
    ['12 good preamble bytes, then FIN', 'fin'],
    ['garbage dripped 1 byte per write', Buffer.from('XGW1').toString('hex').match(/../g)!.map((h) => Buffer.from(h, 'hex'))],
    ['valid preamble, then a record of type L3 (0x04)', [preamble(index), header(0x04, 40)]],
    ['valid preamble, then ct_len 2^32-1', [preamble(index), header(0x01, 0xffff_ffff)]],
    ['valid preamble, then flags set', [preamble(index), header(0x01, 20, (h) => (h[1] = 1))]],
    ['valid preamble, then DATA before OPEN', [preamble(index), header(0x02, 100), randomBytes(100)]],
    ['valid preamble, then an OPEN whose tag fails', [preamble(index), header(0x01, 19), randomBytes(19)]],
    ['valid preamble, then 200 KiB of random garbage', [preamble(index), randomBytes(200 * 1024)]],
  ];
  for (const [what, bytes] of cases) {
    const r = await probe(lab, async (s) => {
      if (bytes === 'fin') return void s.end(preamble(index).subarray(0, 12));
      for (const b of Array.isArray(bytes) ? bytes : [bytes]) {
        if (s.destroyed) return;
        s.write(b);
        if (Array.isArray(bytes)) await new Promise((res) => setImmediate(res));
      }
    });
    t.equal(r.got, 0, `${what}: nothing sent back`);
    t.ok(r.ms < 500, `${what}: closed at once (${r.ms} ms; the deadline would be 1000 ms)`);
  }
  t.ok(await echoWorks(lab), 'a good flow works after all of that');

  const d = await drip;
  const dripTook = clock.now() - dripFrom;
  t.equal(d.got, 0, 'slow drip: nothing sent back');
  t.ok(dripTook >= 9_500 && dripTook < 13_000, `slow drip: closed by the preamble deadline after ${(dripTook / 1000).toFixed(1)} protocol seconds`);
  t.ok(await echoWorks(lab), 'a good flow works after the drip');
  t.equal(lab.rtB().session.slots.current!.n, epoch, 'no rekey, no epoch lost');
  t.equal(lab.rtB().stats.carriersOpened, 6 + 2, 'only the six valid-preamble probes and the two good flows became carriers');
  const count = (ev: string): number => lab.logB.lines.filter((l) => l.event === ev).length;
  t.equal(count('carrier_bad_preamble'), 10, 'bad preambles counted');
  t.equal(count('carrier_unknown_index'), 1, 'unknown receiver_index counted');
  t.equal(count('carrier_preamble_timeout'), 1, 'the drip counted as a preamble timeout');
});
