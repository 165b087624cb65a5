// npm run bench:crypto (issue 3): argument parsing, ratio and final-line formatting, the
// measuring loop, the allocation probe, and smoke runs of the bench itself with tiny
// budgets (real addon and openssl when present; injected unavailable ones).
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SIZES, jsonTargetProblem, parseCryptoBenchArgs, UsageError } from '../../../src/bench/crypto-options.js';
import { finalLine, fmtGrowth, fmtInt, fmtRatio, ratioLines, ratioOf, sizeRatios, tableLines, targetLines, type CellResult, type OpensslCell } from '../../../src/bench/crypto-report.js';
import { allocationFree, allocProbe, best, timeRunner } from '../../../src/bench/crypto-measure.js';
import { makeCells } from '../../../src/bench/crypto-cells.js';
import { runCryptoBench } from '../../../src/bench/crypto-run.js';
import { OPENSSL_MISSING, type OpensslExec } from '../../../src/bench/openssl-speed.js';
import { loadNative } from '../../../src/crypto/native/loader.js';

const FINAL_OK = /^crypto: native\/openssl@1400 = \d+\.\d\d, native\/node@1400 = \d+\.\d\d$/;
const FINAL_UNAVAILABLE = /^crypto: native unavailable \(.+\)$/;

t.test('arguments: the issue sizes, 1 s per cell in 3 reps by default; --quick shortens; flags override', async (t) => {
  const d = parseCryptoBenchArgs([]);
  t.same(d.sizes, [64, 512, 1400, 8192, 65536]);
  t.same(DEFAULT_SIZES, d.sizes);
  t.equal(d.seconds, 1);
  t.equal(d.reps, 3);
  t.equal(d.nobleSeconds, 0.25, 'noble gets a quarter');
  t.equal(d.opensslSeconds, 1);
  t.equal(d.json, null);
  t.equal(d.allocRecords, 1_000_000);
  t.equal(d.help, false);
  const q = parseCryptoBenchArgs(['--quick']);
  t.ok(q.quick);
  t.ok(q.seconds < d.seconds && q.reps < d.reps && q.allocRecords < d.allocRecords);
  const o = parseCryptoBenchArgs(['--quick', '--seconds', '6', '--reps', '2', '--sizes', '1400,64,1400', '--json', '/tmp/x.json']);
  t.same(o.sizes, [1400, 64], 'order kept, duplicates dropped');
  t.equal(o.seconds, 6);
  t.equal(o.reps, 2);
  t.equal(o.opensslSeconds, 3, 'openssl: the per-rep seconds, whole');
  t.equal(o.json, '/tmp/x.json');
  t.equal(parseCryptoBenchArgs(['--seconds', '0.02']).opensslSeconds, 1, 'openssl takes whole seconds >= 1');
});

t.test('bad command lines are UsageErrors', async (t) => {
  for (const argv of [['--sizes', '64, 1400'], ['--sizes', ' 64'], ['--sizes', '64 '], ['--sizes', '64,\t1400'], ['--sizes', '1400, 64,1400'], ['--json', '/nonexistent-qkdgw-dir/r.json'], ['--json', tmpdir()], ['--json', `${tmpdir()}/`], ['-x'], ['--help=yes'], ['--sizes', '64,,1400'], ['--sizes', '0'], ['--sizes', '1e3'], ['--sizes', String(2 ** 20 + 1)], ['--seconds', '0'], ['--seconds', 'x'], ['--seconds', '601'], ['--reps', '0'], ['--reps', '1.5'], ['--json', ''], ['--nope'], ['extra']]) {
    let err: unknown;
    try {
      parseCryptoBenchArgs(argv);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof UsageError, `${argv.join(' ')} is a UsageError`);
  }
});

t.test('--help / -h: the usage, nothing else checked', async (t) => {
  for (const argv of [['--help'], ['-h'], ['--sizes', 'junk', '-h'], ['--json', '/nonexistent-qkdgw-dir/r.json', '--help']]) {
    const o = parseCryptoBenchArgs(argv);
    t.equal(o.help, true, `${argv.join(' ')}: help`);
    t.same(o.sizes, DEFAULT_SIZES, `${argv.join(' ')}: defaults otherwise`);
  }
  t.equal(parseCryptoBenchArgs(['--quick']).help, false);
});

t.test('--json FILE is checked before the run: folder must exist and be writable, not a folder itself', async (t) => {
  const dir = t.testdir({ existing: { 'old.json': '{}' } });
  t.equal(jsonTargetProblem(join(dir, 'new.json')), null, 'a new file in an existing folder');
  t.equal(jsonTargetProblem(join(dir, 'existing', 'old.json')), null, 'an existing writable file (overwritten)');
  t.equal(jsonTargetProblem(relative(process.cwd(), join(dir, 'rel.json'))), null, 'a relative name, against the working directory');
  t.match(jsonTargetProblem(join(dir, 'missing', 'r.json')), /^the folder .*missing does not exist$/, 'a missing folder');
  t.match(jsonTargetProblem(join(dir, 'existing')), /is a folder, not a file$/, 'a folder');
  t.match(jsonTargetProblem(`${join(dir, 'existing')}/`), /names a folder, not a file$/, 'a name ending in /');
  t.match(jsonTargetProblem(join(dir, 'existing', 'old.json', 'x.json')), /is not a folder$/, 'a file used as a folder');
  let err: unknown;
  try {
    parseCryptoBenchArgs(['--json', join(dir, 'missing', 'r.json')]);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof UsageError, 'parseCryptoBenchArgs throws a UsageError');
  t.match((err as Error).message, /^--json: the folder .* does not exist$/);
  if (process.getuid?.() === 0) {
    t.comment('unwritable-folder case not run: root writes anywhere');
  } else {
    const ro = join(dir, 'readonly');
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    t.teardown(() => chmodSync(ro, 0o700));
    t.match(jsonTargetProblem(join(ro, 'r.json')), /is not writable$/, 'an unwritable folder');
  }
});

t.test('allocation probe growth: a negative figure prints as +0 B with the reason, never as a shrinking loop', async (t) => {
  t.equal(fmtGrowth(0, 0), '+0 B');
  t.equal(fmtGrowth(1234.4, 0), '+1,234 B');
  t.equal(fmtGrowth(1234.4, 3), '+1,234 B', 'growth is growth, GC or not');
  t.equal(fmtGrowth(-52_000, 1), '+0 B (GC ran)');
  t.equal(fmtGrowth(-52_000, 0), '+0 B (shrank)');
  t.equal(fmtGrowth(-0.2, 0), '+0 B (shrank)');
  t.equal(fmtGrowth(Number.NaN, 0), 'n/a');
  for (const x of [-1, -1e9, -0.5]) t.notMatch(fmtGrowth(x, 2), /-/, `${x}: no minus sign`);
});

t.test('ratio formatting: two decimals, n/a for anything missing', async (t) => {
  t.equal(ratioOf(3, 2), 1.5);
  for (const [a, b] of [[null, 1], [1, null], [1, 0], [0, 1], [Number.NaN, 1], [1, Number.POSITIVE_INFINITY], [undefined, 2]] as const) t.equal(ratioOf(a, b), null, `${a}/${b}`);
  t.equal(fmtRatio(1.2345), '1.23');
  t.equal(fmtRatio(12), '12.00');
  t.equal(fmtRatio(null), 'n/a');
  t.equal(fmtRatio(Number.NaN), 'n/a');
  t.equal(fmtInt(1234567.8), '1,234,568');
  t.equal(fmtInt(999), '999');
});

const cell = (size: number, backend: CellResult['backend'], pps: number): CellResult => ({ size, backend, packetsPerSec: pps, mbPerSec: (pps * size) / 1e6, reps: [pps, pps * 0.9], secondsPerRep: 0.3 });

t.test('final line: native batch 16 against openssl and node at 1400 bytes, two decimals', async (t) => {
  const cells = [cell(1400, 'native-b1', 900_000), cell(1400, 'native-b16', 1_500_000), cell(1400, 'node', 180_000), cell(64, 'native-b1', 2_000_000)];
  const openssl: OpensslCell[] = [
    { size: 1400, ok: true, packetsPerSec: 1_000_000, mbPerSec: 1400, reps: [1_000_000] },
    { size: 64, ok: false, reason: 'no AES-256-GCM line in openssl speed output' },
  ];
  const ratios = [sizeRatios(64, cells, openssl), sizeRatios(1400, cells, openssl)];
  t.equal(ratios[1]!.b16OverOpenssl, 1.5);
  t.equal(ratios[1]!.b1OverOpenssl, 0.9);
  t.equal(ratios[0]!.b1OverOpenssl, null, 'openssl missing at 64');
  const line = finalLine({ available: true }, ratios);
  t.equal(line, 'crypto: native/openssl@1400 = 1.50, native/node@1400 = 8.33');
  t.match(line, FINAL_OK);
  t.equal(finalLine({ available: false, reason: 'addon not built' }, ratios), 'crypto: native unavailable (addon not built)');
  t.equal(finalLine({ available: true }, [sizeRatios(1400, cells, [])]), 'crypto: native/openssl@1400 = n/a, native/node@1400 = 8.33', 'openssl missing');
  t.equal(finalLine({ available: true }, [ratios[0]!]), 'crypto: native/openssl@1400 = n/a, native/node@1400 = n/a', '1400 not measured');
  const rl = ratioLines(ratios);
  t.match(rl[1], /1400 B: native\/openssl = 1\.50 \(batch 16\), 0\.90 \(batch 1\); native\/node = 8\.33 \(batch 16\), 5\.00 \(batch 1\)/);
  const tl = targetLines(ratios);
  t.match(tl[0], /@1400 >= 1\.20: 1\.50 met/);
  t.match(tl[1], /node +@1400 >= 8\.00: 8\.33 met/);
  t.match(tl[2], /@64 +>= 1\.00: not measured/);
  const table = tableLines(1400, cells, openssl, true);
  t.match(table[0], /size +backend +packets\/s +MB\/s +vs openssl/);
  t.match(table[1], /1400 +openssl speed -aead +1,000,000 +1400\.0 +1\.00/);
  t.match(table[3], /1400 +native batch 16 +1,500,000 +2100\.0 +1\.50  10%/);
  t.match(tableLines(64, cells, openssl)[0], /n\/a.*\(no AES-256-GCM line/);
});

t.test('timeRunner runs at least the budget and counts every record; best() picks the fastest', async (t) => {
  let records = 0;
  const r = { recordsPerCall: 4, run: (calls: number): void => void (records += calls * 4) };
  const first = timeRunner(r, 0.005);
  t.ok(records > first.records, 'the first call calibrates the chunk; those calls are not counted');
  const before = records;
  const s = timeRunner(r, 0.01);
  t.equal(s.records, records - before, 'every record of a calibrated runner is counted');
  t.equal(s.records % 4, 0);
  t.ok(s.seconds >= 0.01, `${s.seconds} s >= budget`);
  t.equal(s.packetsPerSec, s.records / s.seconds);
  t.equal(best([{ records: 1, seconds: 1, packetsPerSec: 1 }, { records: 3, seconds: 1, packetsPerSec: 3 }, { records: 2, seconds: 1, packetsPerSec: 2 }]).packetsPerSec, 3);
  t.throws(() => best([]));
});

t.test('allocation probe: a loop that allocates per record is caught, one that does not passes', async (t) => {
  const sink: unknown[] = [];
  const allocating = { recordsPerCall: 1, run: (calls: number): void => { for (let i = 0; i < calls; i++) sink[i & 1023] = { i, pad: [i, i, i, i] }; } };
  const a = await allocProbe(allocating, 200_000);
  t.notOk(allocationFree(a), `allocating loop: ${a.gcs} GCs, heap ${a.heapUsedDelta}`);
  const scratch = new Uint8Array(16);
  const quiet = { recordsPerCall: 1, run: (calls: number): void => { for (let i = 0; i < calls; i++) scratch[i & 15] = i & 0xff; } };
  const q = await allocProbe(quiet, 200_000);
  t.ok(allocationFree(q), `quiet loop: ${q.gcs} GCs, heap ${q.heapUsedDelta}`);
  t.equal(q.records, 200_000);
});

t.test('every backend cell encrypts: output checked against node:crypto (AES) or by opening (XChaCha)', async (t) => {
  const st = loadNative();
  const cells = makeCells(100, st.available ? st.binding : null);
  t.teardown(() => cells.forEach((c) => c.destroy()));
  t.same(cells.map((c) => c.id), [...(st.available ? ['native-b1', 'native-b16'] : []), 'node', 'xchacha', 'noble']);
  for (const c of cells) t.doesNotThrow(() => c.selfCheck(), c.id);
  if (st.available) {
    t.equal(cells[1]!.recordsPerCall, 16);
    // IVs of 0xff bytes (the allocation probe's): counter words XORed into words >= 2^31.
    const ff = makeCells(64, st.binding, { ivByte: 0xff });
    for (const c of ff) t.doesNotThrow(() => c.selfCheck(), `${c.id} with IV 0xff`);
    ff.forEach((c) => c.destroy());
  }
});

/** Deliberately tiny: 0.02 s per cell, one repetition, sizes 64 and 1400. */
function smokeOptions(json: string | null = null) {
  return { ...parseCryptoBenchArgs(['--sizes', '64,1400', '--seconds', '0.02', '--reps', '1', ...(json ? ['--json', json] : [])]), allocRecords: 5_000 };
}

t.test('smoke run with the real addon and openssl (when present): table, ratios, final line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qkdgw-bench-crypto-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'r.json');
  const lines: string[] = [];
  const r = await runCryptoBench(smokeOptions(file), { say: (s) => lines.push(s) });
  const last = lines.at(-1)!;
  t.equal(last, r.finalLine);
  if (r.native.available && r.openssl.every((o) => o.ok)) t.match(last, FINAL_OK);
  else if (!r.native.available) t.match(last, FINAL_UNAVAILABLE);
  else t.match(last, /^crypto: native\/openssl@1400 = n\/a, native\/node@1400 = \d+\.\d\d$/);
  const text = lines.join('\n');
  t.match(text, /CPU .* logical cores/);
  t.match(text, new RegExp(`node ${process.version.replace(/\./g, '\\.')} \\(linked OpenSSL`));
  t.match(text, /openssl CLI: /);
  t.match(text, /size +backend +packets\/s +MB\/s +vs openssl/);
  for (const size of [64, 1400]) for (const b of ['node:crypto', 'noble \\(pure JS\\)', 'XChaCha20-Poly1305']) t.match(text, new RegExp(`^ +${size}  ${b}`, 'm'));
  t.match(text, /1400 B: native\/openssl = /);
  t.match(text, /noble \(pure JS, very slow\) gets a shorter budget/);
  const backends = r.native.available ? 5 : 3;
  t.equal(r.cells.length, 2 * backends);
  for (const c of r.cells) t.ok(c.packetsPerSec > 0 && c.mbPerSec === (c.packetsPerSec * c.size) / 1e6, `${c.size} ${c.backend}`);
  if (r.native.available) {
    t.match(text, /^ +64  native batch 16/m);
    t.match(text, /allocation probe of the native path/);
    const b16 = r.alloc.find((a) => a.label === 'native batch 16');
    t.ok(b16, 'batch 16 probed');
    t.ok(b16!.allocationFree, `native batch 16 allocates nothing per record (${JSON.stringify(b16!.probe)})`);
  }
  const json = JSON.parse(readFileSync(file, 'utf8')) as { finalLine: string; cells: unknown[]; machine: { cores: number } };
  t.equal(json.finalLine, r.finalLine);
  t.equal(json.cells.length, r.cells.length);
  t.ok(json.machine.cores >= 1);
});

t.test('smoke run with no addon and no openssl CLI: reasons printed, ratios n/a, exit path is the unavailable line', async (t) => {
  const lines: string[] = [];
  const calls: string[][] = [];
  const enoent: OpensslExec = async (args) => {
    calls.push(args);
    throw Object.assign(new Error('spawn openssl ENOENT'), { code: 'ENOENT' });
  };
  const r = await runCryptoBench(smokeOptions(), {
    say: (s) => lines.push(s),
    native: { available: false, reason: 'disabled by the test', path: '/nowhere.node' },
    opensslExec: enoent,
  });
  t.equal(lines.at(-1), 'crypto: native unavailable (disabled by the test)');
  t.match(lines.at(-1), FINAL_UNAVAILABLE);
  t.same(calls, [['version']], 'no speed run is tried once the CLI is known missing');
  const text = lines.join('\n');
  t.match(text, /native addon: unavailable: disabled by the test/);
  t.match(text, /apt-get install openssl/);
  t.match(text, /1400 B: native\/openssl = n\/a \(batch 16\), n\/a \(batch 1\); native\/node = n\/a/);
  t.same([...new Set(r.cells.map((c) => c.backend))], ['node', 'xchacha', 'noble']);
  t.ok(r.openssl.every((o) => !o.ok && o.reason === OPENSSL_MISSING));
  t.same(r.alloc, []);
});

t.test('garbled openssl output at one size: that size is n/a with the reason, the other is used', async (t) => {
  const fake: OpensslExec = async (args) => {
    if (args[0] === 'version') return 'OpenSSL 3.0.19 (fake)\n';
    const bytes = args[args.indexOf('-bytes') + 1];
    return bytes === '64' ? `type ${bytes} bytes\nAES-256-GCM    ?!\n` : `type ${bytes} bytes\nAES-256-GCM    1000.00k\n`;
  };
  const lines: string[] = [];
  const r = await runCryptoBench(smokeOptions(), { say: (s) => lines.push(s), opensslExec: fake });
  t.match(lines.join('\n'), /^ +64 +openssl speed -aead +n\/a +n\/a .*garbled AES-256-GCM figure/m);
  t.equal(r.openssl.find((o) => o.size === 1400)?.ok, true);
  if (r.native.available) t.match(lines.at(-1), FINAL_OK, '1000 kB/s at 1400 bytes is a number, so the line has one');
  else t.match(lines.at(-1), FINAL_UNAVAILABLE);
});

t.test('runCryptoBench: an unwritable --json target is refused before anything is measured or printed', async (t) => {
  const lines: string[] = [];
  const o = { ...smokeOptions(), json: join(t.testdir({}), 'missing', 'r.json') };
  await t.rejects(runCryptoBench(o, { say: (s) => lines.push(s) }), UsageError);
  t.same(lines, [], 'nothing printed, nothing measured');
});

t.test('runCryptoBench prints where the addon came from (nativeFrom)', async (t) => {
  const lines: string[] = [];
  const enoent: OpensslExec = async () => {
    throw Object.assign(new Error('spawn openssl ENOENT'), { code: 'ENOENT' });
  };
  await runCryptoBench({ ...smokeOptions(), sizes: [64] }, { say: (s) => lines.push(s), native: { available: false, reason: 'no addon at /x/y.node', path: '/x/y.node' }, nativeFrom: 'QKDGW_NATIVE_ADDON=y.node', opensslExec: enoent });
  t.ok(lines.includes('  native addon: unavailable: no addon at /x/y.node (QKDGW_NATIVE_ADDON=y.node)'), 'the header line names the reason and the knob');
});

/** The entry file, run as its own process from source (with this test's TypeScript loader flags). */
const ENTRY = fileURLToPath(new URL('../../../src/bench/crypto.ts', import.meta.url));

async function runEntry(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = { ...process.env };
  delete base.QKDGW_NATIVE;
  delete base.QKDGW_NATIVE_ADDON;
  // tap's TypeScript loader only: its coverage and mock hooks (in execArgv and in
  // NODE_OPTIONS) cost ~0.5 s or more per spawn, and the child's coverage is not needed.
  const tapHook = /^--import=\S*@tapjs[/\\](processinfo|mock)[/\\]\S*$/;
  const execArgv = process.execArgv.filter((x) => !tapHook.test(x));
  if (base.NODE_OPTIONS) base.NODE_OPTIONS = base.NODE_OPTIONS.split(/\s+/).filter((x) => x && !tapHook.test(x)).join(' ');
  const child = spawn(process.execPath, [...execArgv, ENTRY, ...args], { env: { ...base, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((res, rej) => {
    child.on('error', rej);
    child.on('close', (c) => res(c));
  });
  return { code, stdout, stderr };
}

/** A run as short as the command line allows: one size, 0.02 s per cell, 200k-record allocation probes. */
const TINY = ['--quick', '--sizes', '64', '--seconds', '0.02', '--reps', '1'];

// Each spawn loads the TypeScript loader (~1.5 s of CPU), so the quick cases run at once,
// and the usage errors the parser already covers above are represented by one of each kind.
t.test('entry file: --help/-h exit 0; usage errors and a bad QKDGW_NATIVE exit 64 before measuring; QKDGW_NATIVE=1 without the addon exits 1', async (t) => {
  const dir = t.testdir({});
  const missing = join(dir, 'none.node');
  const [help, h, json, sizes, banana, required] = await Promise.all([
    runEntry(['--help']),
    runEntry(['-h']),
    runEntry(['--json', join(dir, 'missing', 'r.json')]),
    runEntry(['--sizes', '64, 1400']),
    runEntry([], { QKDGW_NATIVE: 'banana' }),
    runEntry(TINY, { QKDGW_NATIVE: '1', QKDGW_NATIVE_ADDON: missing }),
  ]);
  for (const [flag, r] of [['--help', help], ['-h', h]] as const) {
    t.equal(r.code, 0, `${flag}: exit 0`);
    t.match(r.stdout, /^usage: npm run bench:crypto -- /, `${flag}: the usage on stdout`);
    t.match(r.stdout, /QKDGW_NATIVE_ADDON=PATH/, `${flag}: documents the environment`);
    t.equal(r.stderr, '', `${flag}: nothing on stderr`);
  }
  for (const [what, r, why] of [
    ['--json in a missing folder', json, /^bench:crypto: --json: the folder .*missing does not exist\n/],
    ['--sizes with a space', sizes, /^bench:crypto: --sizes: expected comma-separated integers without spaces/],
    ['QKDGW_NATIVE=banana', banana, /^bench:crypto: QKDGW_NATIVE="banana" is not understood/],
  ] as const) {
    t.equal(r.code, 64, `${what}: exit 64`);
    t.match(r.stderr, why, `${what}: says why`);
    t.match(r.stderr, /usage: npm run bench:crypto/, `${what}: and the usage`);
    t.equal(r.stdout, '', `${what}: nothing measured`);
  }
  t.equal(required.code, 1, 'QKDGW_NATIVE=1, no addon: exit 1');
  t.equal(required.stderr, `crypto: FAILED QKDGW_NATIVE=1 but the native addon is unavailable: no addon at ${missing}\n`);
  t.equal(required.stdout, '', 'QKDGW_NATIVE=1, no addon: nothing measured');
});

t.test('entry file: QKDGW_NATIVE=0 measures without the addon, and says so', async (t) => {
  const json = join(t.testdir({}), 'r.json');
  const r = await runEntry([...TINY, '--json', json], { QKDGW_NATIVE: '0' });
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr.trim()})`);
  t.match(r.stdout, /^ {2}native addon: unavailable: disabled by QKDGW_NATIVE=0$/m);
  t.match(r.stdout, /crypto: native unavailable \(disabled by QKDGW_NATIVE=0\)\n$/);
  t.notMatch(r.stdout, /allocation probe of the native path/, 'no native probe');
  t.equal((JSON.parse(readFileSync(json, 'utf8')) as { native: { available: boolean } }).native.available, false, 'the JSON says native was unavailable');
});

t.test('entry file: a relative QKDGW_NATIVE_ADDON (against the working directory) is the addon measured, and printed', async (t) => {
  const real = loadNative();
  if (!real.available) {
    t.pass(`not run: the native addon is unavailable (${real.reason})`);
    return;
  }
  const dir = t.testdir({});
  const copy = join(dir, 'bench-copy.node');
  copyFileSync(real.path, copy);
  const r = await runEntry(TINY, { QKDGW_NATIVE_ADDON: 'bench-copy.node' }, dir);
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr.trim()})`);
  t.ok(r.stdout.includes(`  native addon: loaded from ${copy} (QKDGW_NATIVE_ADDON=bench-copy.node)\n`), 'the header names the resolved path and the knob');
  t.match(r.stdout, /^ +64  native batch 16/m, 'native was measured');
  t.notMatch(r.stdout, /heapUsed -|arrayBuffers -/, 'no negative growth printed');
  t.match(r.stdout.trimEnd().split('\n').at(-1), /^crypto: native\/openssl@1400 = n\/a, native\/node@1400 = n\/a$/, '1400 not measured: n/a on both sides');
});
