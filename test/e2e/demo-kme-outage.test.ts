// Issue 4, "done when": `qkdgw demo --scenario kme-outage` shows a KME outage ridden through
// under qkd: required (traffic held at the hard limit, then a QKD epoch again) and under
// qkd: preferred (step down, degraded epochs, recovery checks, qkd_restored), printing the
// ladder steps in order and ending with one `demo: OK ...` line; no process is left behind.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { QKDGW_BIN } from '../../src/cli/demo/children.js';
import { KEY_LEDGER_ENV, readKeyLedgerDir } from '../../src/kms/simulator/key-ledger.js';
import { describeLeaks, findKeyLeaks } from '../helpers/key-leak.js';

const KEY_ID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

/** Index of the first line at or after `from` matching `re`, or -1. */
function find(lines: string[], re: RegExp, from: number): number {
  for (let i = from; i < lines.length; i++) if (re.test(lines[i])) return i;
  return -1;
}

/** Asserts that each pattern matches a line after the previous pattern's line. */
function inOrder(t: Test, lines: string[], steps: Array<[string, RegExp]>): void {
  let at = 0;
  for (const [what, re] of steps) {
    const i = find(lines, re, at);
    t.ok(i >= 0, `${what}${i >= 0 ? '' : ` (no line after #${at} matches ${re})`}`);
    if (i < 0) return;
    at = i + 1;
  }
}

t.test('qkdgw demo --scenario kme-outage', async (t) => {
  const env = { ...process.env };
  // A TMPDIR of its own names this demo's files (and its children's argv) apart from any
  // other demo a parallel test file runs.
  const tmp = t.testdir({ 'key-ledger': {} });
  env.TMPDIR = tmp;
  // Issue 5 point 6: both phases' simulators record every key they issue (test-only ledger).
  env[KEY_LEDGER_ENV] = join(tmp, 'key-ledger');
  const started = Date.now();
  const p = spawn(process.execPath, [QKDGW_BIN, 'demo', '--scenario', 'kme-outage'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (c: Buffer) => (out += c.toString()));
  p.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  const seconds = (Date.now() - started) / 1000;
  t.comment(out);
  const lines = out.trim().split('\n');
  t.equal(code, 0, 'exit 0');
  const last = lines.at(-1) ?? '';
  t.match(last, /^demo: OK \d+ bytes verified across \d+ epochs \(required: held \d+\.\ds, resumed; preferred: \d+ degraded epochs, restored\)$/, 'verdict line');
  t.equal(lines.filter((l) => l.startsWith('demo: ')).length, 1, 'exactly one verdict line');
  t.ok(seconds < 60, `the whole scenario takes under a minute (${seconds.toFixed(1)} s)`);

  const req = lines.filter((l) => l.startsWith('  [required] '));
  inOrder(t, req, [
    ['required: the KME goes dark', /t\+0\.\ds KME dark \(admin\): link paused and drained, stored_key_count 0/],
    ['required: enc_keys fails', /t\+\d+\.\ds KME empty: enc_keys failing \(handshake_failed epoch \d+: enc_keys failed: /],
    ['required: hard limit, traffic held', /t\+\d+\.\ds epoch \d+ past its hard limit: traffic held \(not reset\)/],
    ['required: nothing moves during the hold', /stream: no byte moved during the hold/],
    ['required: the KME comes back', /KME back \(admin\): link resumed/],
    ['required: a new QKD epoch with its key_ID', new RegExp(`QKD epoch \\d+, key_ID ${KEY_ID}: traffic flows again after a hold of \\d+\\.\\d s`)],
    ['required: stream intact', /stream: [\d.]+ MiB each way over [\d.]+ s, SHA-256 verified, never reset; gw-b agrees on all \d+ epochs/],
  ]);
  t.notOk(req.some((l) => /degraded epoch|qkd_step_down|UNEXPECTED/.test(l)), 'required: no degraded epoch, no unexpected event');
  const held = Number(/held (\d+\.\d)s/.exec(last)?.[1]);
  t.ok(held >= 3, `required: held for the demo's hold of 3 s or more (${held} s)`);

  const pref = lines.filter((l) => l.startsWith('  [preferred] '));
  inOrder(t, pref, [
    ['preferred: the KME goes dark', /t\+0\.\ds KME dark \(admin\)/],
    ['preferred: qkd_step_down', /qkd_step_down: enc_keys failed/],
    ['preferred: qkd_degraded alarm', /qkd_degraded: alarm, epoch \d+ .*ML-KEM-768 \+ X25519 only/],
    ['preferred: degraded epoch n', /degraded epoch \d+: ML-KEM-768 \+ X25519 only, no key_ID/],
    ['preferred: degraded epoch n+1', /degraded epoch \d+: ML-KEM-768 \+ X25519 only, no key_ID/],
    ['preferred: the KME comes back', /KME back \(admin\): link resumed/],
    ['preferred: good check 1/3', /kme_status_checked: stored_key_count [1-9]\d*, good check 1\/3/],
    ['preferred: good check 2/3', /good check 2\/3/],
    ['preferred: good check 3/3', /good check 3\/3/],
    ['preferred: qkd_recovery_ready', /qkd_recovery_ready: 3 good status checks/],
    ['preferred: qkd_restored with a key_ID', new RegExp(`qkd_restored: QKD epoch \\d+, key_ID ${KEY_ID}`)],
    ['preferred: stream intact', /stream: [\d.]+ MiB each way over [\d.]+ s, SHA-256 verified, never reset; gw-b agrees/],
  ]);
  t.notOk(pref.some((l) => /past its hard limit|UNEXPECTED/.test(l)), 'preferred: never held, no unexpected event');
  const degraded = pref.map((l) => /degraded epoch (\d+):/.exec(l)?.[1]).filter((x): x is string => x !== undefined).map(Number);
  t.ok(degraded.length >= 2, 'preferred: at least two degraded epochs');
  t.same(degraded, degraded.map((_, i) => degraded[0] + i), 'preferred: degraded epochs are consecutive (n, n+1, ...)');
  t.equal(Number(/preferred: (\d+) degraded epochs/.exec(last)?.[1]), degraded.length, 'verdict counts the degraded epochs printed');

  // Its children were started with the bin path as argv[1] and config files under TMPDIR.
  const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  t.notOk(ps.stdout.includes(join(tmp, 'qkdgw-demo-')), 'no demo child process left');
  const keys = readKeyLedgerDir(join(tmp, 'key-ledger'));
  t.ok(keys.length >= 4, `issue5-6: the two simulators' ledgers hold ${keys.length} keys`);
  const hits = findKeyLeaks(keys, { 'qkdgw demo --scenario kme-outage': out });
  t.same(hits, [], `issue5-6: none of them in the demo's output${hits.length ? `:\n${describeLeaks(hits)}` : ''}`);
});

t.test('qkdgw demo: an unknown scenario is a usage error', async (t) => {
  const r = spawnSync(process.execPath, [QKDGW_BIN, 'demo', '--scenario', 'bogus'], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 64, 'exit 64');
  t.match(r.stderr, /--scenario wants one of basic, kme-outage; got "bogus"/, 'names the scenarios');
  t.equal(r.stdout, '', 'starts nothing');
  const b = spawnSync(process.execPath, [QKDGW_BIN, 'demo', '--scenario', 'kme-outage', '--bytes', '1MiB'], { encoding: 'utf8', timeout: 20_000 });
  t.equal(b.status, 64, '--bytes with kme-outage: exit 64');
});
