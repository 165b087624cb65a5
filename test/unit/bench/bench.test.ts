// npm run bench: its option parsing, the sink/source target and the flow runner on a
// direct loopback connection, and the final line. The tunnel path needs the lab
// processes; `npm run bench` itself exercises it.
import t from 'tap';
import { parseBenchArgs, UsageError } from '../../../src/bench/options.js';
import { startBenchTarget } from '../../../src/bench/target.js';
import { runFlow } from '../../../src/bench/flows.js';
import { finalLine, ratio, type Row } from '../../../src/bench/report.js';
import { parseDuration } from '../../../src/config/units.js';

const never = new Promise<never>(() => undefined);

t.test('defaults: 5 s of sending per flow, the policy default rekey 120s / jitter 10s / hard limit 180s', async (t) => {
  const o = parseBenchArgs([]);
  t.equal(o.bytes, Number.MAX_SAFE_INTEGER);
  t.equal(o.sendMs, 5000);
  t.equal(o.rekey, '120s');
  t.equal(parseDuration(o.rekeyJitter).value, 10_000);
  t.equal(parseDuration(o.hardLimit).value, 180_000);
});

t.test('--rekey 2s yields a hard limit that passes rekey + jitter + 2 x handshake_timeout < hard limit', async (t) => {
  const o = parseBenchArgs(['--rekey', '2s', '--bytes', '1MiB', '--seconds', '0.5']);
  const need = o.rekeyMs + parseDuration(o.rekeyJitter).value! + 2 * 5000;
  t.ok(need < parseDuration(o.hardLimit).value!, `${need} < ${o.hardLimit}`);
  t.equal(o.bytes, 2 ** 20);
  t.equal(o.sendMs, 500);
  t.match(o.boundText, /1 MiB or 0.5 s/);
  const b = parseBenchArgs(['--bytes', '512MiB']);
  t.equal(b.bytes, 512 * 2 ** 20);
  t.equal(b.sendMs, 600_000, '--bytes alone: bounded by bytes, with a 600 s cap');
});

t.test('bad command lines are UsageErrors', async (t) => {
  for (const argv of [['--bytes', '12GB'], ['--bytes', '0'], ['--seconds', 'x'], ['--seconds', '0'], ['--rekey', '120'], ['--rekey', '500ms'], ['--nope']]) {
    t.throws(() => parseBenchArgs(argv), { name: 'UsageError' }, argv.join(' '));
    t.ok((() => { try { parseBenchArgs(argv); } catch (e) { return e instanceof UsageError; } return false; })(), `${argv.join(' ')} is a UsageError`);
  }
});

t.test('direct flows: every byte sent is counted by the receiver, both directions', async (t) => {
  const target = await startBenchTarget();
  t.teardown(() => target.close());
  const up = await runFlow('direct', 'upload', target.port, target, { maxBytes: 3 * 2 ** 20 + 5, maxMs: 10_000 }, never);
  t.equal(up.sent, 3 * 2 ** 20 + 5);
  t.equal(up.received.bytes, up.sent);
  t.ok(up.received.lastNs >= up.received.firstNs);
  const down = await runFlow('direct', 'download', target.port, target, { maxBytes: 2 ** 20 + 7, maxMs: 10_000 }, never);
  t.equal(down.received.bytes, 2 ** 20 + 7);
  t.equal(down.sent, down.received.bytes);
});

t.test('the time bound ends a flow before the byte bound', async (t) => {
  const target = await startBenchTarget();
  t.teardown(() => target.close());
  const r = await runFlow('direct', 'download', target.port, target, { maxBytes: Number.MAX_SAFE_INTEGER, maxMs: 200 }, never);
  t.ok(r.received.bytes > 0 && r.received.bytes < Number.MAX_SAFE_INTEGER);
  t.equal(r.sent, r.received.bytes);
});

t.test('a dead lab process fails the flow with its reason', async (t) => {
  const target = await startBenchTarget();
  t.teardown(() => target.close());
  const abort = Promise.reject(new Error('gw-b exited unexpectedly'));
  await t.rejects(runFlow('tunnel', 'upload', target.port, target, { maxBytes: 2 ** 30, maxMs: 5_000 }, abort), /tunnel upload: gw-b exited unexpectedly/);
});

t.test('final line: tunnel/direct MB/s per direction, two decimals', async (t) => {
  const row = (path: 'direct' | 'tunnel', direction: 'upload' | 'download', mbps: number): Row => ({ path, result: { direction, sent: 1, received: { bytes: 1, firstNs: 0n, lastNs: 1n }, mbps } });
  const rows = [row('direct', 'upload', 1000), row('tunnel', 'upload', 250), row('direct', 'download', 2000), row('tunnel', 'download', 300)];
  t.equal(ratio(rows, 'upload'), 0.25);
  t.equal(finalLine(rows), 'bench: tunnel/direct upload = 0.25, download = 0.15');
});
