// The quick start's promise: `qkdgw demo` ends with exactly one `demo: OK ...` line and exit 0,
// and leaves no process behind. Issue 3: it says which AEAD backend the gateways chose
// (read from their `crypto_backend` log events) and the suite of their epochs.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QKDGW_BIN } from '../../src/cli/demo/children.js';
import { KEY_LEDGER_ENV, readKeyLedgerDir } from '../../src/kms/simulator/key-ledger.js';
import { describeLeaks, findKeyLeaks } from '../helpers/key-leak.js';

const ADDON = join(fileURLToPath(new URL('../../', import.meta.url)), 'native', 'build', 'Release', 'qkdgw_native.node');

t.test('qkdgw demo', async (t) => {
  // The backend knobs are cleared so that `auto` decides from the build alone.
  const env = { ...process.env };
  delete env.QKDGW_NATIVE;
  delete env.QKDGW_NATIVE_ADDON;
  // A TMPDIR of its own names this demo's files (and its children's argv) apart from any
  // other demo that a parallel test file runs at the same time.
  const tmp = t.testdir({ 'key-ledger': {} });
  env.TMPDIR = tmp;
  // Issue 5 point 6: the demo's simulator records every key it issues (test-only ledger).
  env[KEY_LEDGER_ENV] = join(tmp, 'key-ledger');
  const p = spawn(process.execPath, [QKDGW_BIN, 'demo', '--keep'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (c: Buffer) => (out += c.toString()));
  p.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  const lines = out.trim().split('\n');
  t.equal(code, 0, 'exit 0');
  // With --keep the last line names the folder kept; the verdict comes just before it.
  t.match(lines.at(-1) ?? '', /^ {2}\(kept \S+\)$/, 'last line: the folder kept');
  const verdict = lines.at(-2) ?? '';
  t.match(verdict, /^demo: OK \d+ bytes verified across \d+ epochs$/, 'the verdict line');
  t.equal(lines.filter((l) => l.startsWith('demo: ')).length, 1, 'exactly one verdict line');
  const n = Number(/across (\d+) epochs/.exec(verdict)?.[1]);
  t.ok(n >= 4, 'first epoch plus at least 3 rekeys');
  const bytes = Number(/OK (\d+) bytes/.exec(verdict)?.[1]);
  t.ok(bytes >= 2 * 64 * 2 ** 20, '64 MiB each way counted');
  const aead = lines.filter((l) => l.trimStart().startsWith('AEAD backend: '));
  t.equal(aead.length, 1, 'one AEAD backend line');
  t.match(aead[0] ?? '', /^ {2}AEAD backend: (native|node|noble) on gw-a and gw-b \(auto chose \1: .*\); suite 1 \([^)]*AES-256-GCM\)$/, 'both gateways on one backend chosen by auto; suite 1');
  if (existsSync(ADDON)) t.match(aead[0] ?? '', /AEAD backend: native on gw-a and gw-b \(auto chose native: /, 'the addon is built: the gateways use native');
  else t.comment(`native addon not built (${ADDON} missing): not asserting the native choice`);
  // Its children were started with the bin path as argv[1]: none may survive.
  const ps = spawn('ps', ['-eo', 'args'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let list = '';
  ps.stdout.on('data', (c: Buffer) => (list += c.toString()));
  await new Promise((r) => ps.once('exit', r));
  t.notOk(list.includes(join(tmp, 'qkdgw-demo-')), 'no demo child process left');
  const keys = readKeyLedgerDir(join(tmp, 'key-ledger'));
  t.ok(keys.length >= n, `issue5-6: the simulator's ledger holds a key per QKD epoch at least (${keys.length})`);
  // --keep left the work folder with each process's complete output (stdout and stderr).
  const work = /work folder (\S+)/.exec(out)?.[1] ?? '';
  t.ok(out.includes(`(kept ${work})`), 'the work folder was kept');
  const logs = Object.fromEntries(['kme-sim', 'gw-a', 'gw-b'].map((n) => [n, readFileSync(join(work, `${n}.log`), 'utf8')]));
  for (const [n, text] of Object.entries(logs)) t.ok(text.includes('"event":"'), `${n}.log holds its JSON log lines`);
  t.match(logs['gw-a'], /"event":"epoch_switch"/, 'gw-a.log shows its epochs');
  const hits = findKeyLeaks(keys, { 'qkdgw demo': out, ...logs });
  t.same(hits, [], `issue5-6: none of them in the demo's output nor in any process's log${hits.length ? `:\n${describeLeaks(hits)}` : ''}`);
  rmSync(work, { recursive: true, force: true });
});
