// Issue 3: "the fallback works with the addon removed (a test proves it)".
// A copy of the installed package WITHOUT native/build (as on a machine with no compiler):
// `qkdgw selftest` falls back to node:crypto and says why, forcing `native` is refused,
// and a whole demo (kme-sim + two `qkdgw run` processes from the copy) moves data with
// the gateways logging `crypto_backend node`. In the original tree, when the addon is
// built, `auto` picks it, and QKDGW_NATIVE=0 turns it off.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ADDON = join(ROOT, 'native', 'build', 'Release', 'qkdgw_native.node');
const MiB = 2 ** 20;

interface Selftest {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean }>;
  backends: Array<{ name: string; available: boolean; detail: string; selftest: unknown }>;
  chosen: { backend: string; requested: string; why: string } | null;
  refusal: string | null;
}

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment of the test minus the backend knobs, plus `extra`. */
function envWith(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.QKDGW_NATIVE;
  delete env.QKDGW_NATIVE_ADDON;
  return { ...env, ...extra };
}

/** Runs `node <bin> ...args` to its end (killed after `ms`). */
function qkdgw(bin: string, args: string[], env: NodeJS.ProcessEnv, ms = 20_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.once('error', reject);
    p.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The command lines of every process on this host (`ps -eo args`). */
function processArgs(): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn('ps', ['-eo', 'args'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.once('error', reject);
    p.once('close', () => resolve(out.split('\n')));
  });
}

function parseSelftest(t: Test, r: Ran, what: string): Selftest {
  try {
    return JSON.parse(r.stdout) as Selftest;
  } catch {
    t.fail(`${what}: stdout is not JSON`, { stdout: r.stdout.slice(0, 500), stderr: r.stderr.slice(0, 500) });
    throw new Error(`${what}: no JSON`);
  }
}

/**
 * The installed package as `npm pack` would ship it, minus the addon build: bin/, dist/,
 * config/ and package.json copied (real files: ESM resolves symlinks to real paths, so a
 * symlinked dist/ would find the original native/build), node_modules linked.
 */
function packageCopy(dir: string): string {
  const copy = join(dir, 'pkg');
  mkdirSync(copy);
  for (const d of ['bin', 'dist', 'config']) cpSync(join(ROOT, d), join(copy, d), { recursive: true, dereference: true });
  cpSync(join(ROOT, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  return copy;
}

t.before(() => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` before the e2e tests');
});

t.test('package copy without native/build', async (t) => {
  const copy = packageCopy(t.testdir());
  const bin = join(copy, 'bin', 'qkdgw.js');
  const copyAddon = join(copy, 'native', 'build', 'Release', 'qkdgw_native.node');
  t.notOk(existsSync(join(copy, 'native')), 'the copy has no native/ folder');

  t.test('selftest --json falls back to node and says the addon is missing', async (t) => {
    const r = await qkdgw(bin, ['selftest', '--json'], envWith());
    t.equal(r.code, 0, 'exit 0');
    const j = parseSelftest(t, r, 'selftest');
    t.equal(j.ok, true, 'ok: true');
    t.equal(j.chosen?.backend, 'node', 'chosen backend: node');
    t.equal(j.chosen?.requested, 'auto', 'requested: auto');
    t.match(j.chosen?.why ?? '', /native unavailable/, 'the choice says native was unavailable');
    const native = j.backends.find((b) => b.name === 'native');
    t.equal(native?.available, false, 'native: available false');
    t.match(native?.detail ?? '', /missing|not built/, 'native: the reason says the addon is missing');
    t.ok(native?.detail.includes(copyAddon), `the reason names the copy's addon path (${native?.detail})`);
    t.equal(native?.selftest, null, 'native: not tested');
    t.ok(j.backends.find((b) => b.name === 'node')?.available, 'node: available');
    t.ok(j.checks.length > 0 && j.checks.every((c) => c.ok), 'every check passed');
    t.ok(j.checks.some((c) => c.name.startsWith('AES-256-GCM on node')), 'the AES-256-GCM checks ran on node');
  });

  t.test('selftest --backend native is refused with QKDGW_E_CRYPTO_BACKEND', async (t) => {
    const r = await qkdgw(bin, ['selftest', '--backend', 'native', '--json'], envWith());
    t.equal(r.code, 78, 'exit 78 (a refused backend is a configuration refusal, as for qkdgw run)');
    const j = parseSelftest(t, r, 'selftest --backend native');
    t.equal(j.ok, false, 'ok: false');
    t.equal(j.chosen, null, 'nothing chosen');
    t.match(j.refusal ?? '', /^QKDGW_E_CRYPTO_BACKEND: /, 'refusal code QKDGW_E_CRYPTO_BACKEND');
    t.match(j.refusal ?? '', /native \(forced by --backend\) is unavailable/, 'the refusal says native is unavailable');
  });

  t.test('QKDGW_NATIVE=1 (require the addon) is refused, not a silent fallback', async (t) => {
    const r = await qkdgw(bin, ['selftest', '--json'], envWith({ QKDGW_NATIVE: '1' }));
    t.equal(r.code, 78, 'exit 78');
    t.match(parseSelftest(t, r, 'QKDGW_NATIVE=1').refusal ?? '', /^QKDGW_E_CRYPTO_BACKEND: /, 'refusal code QKDGW_E_CRYPTO_BACKEND');
  });

  t.test('QKDGW_NATIVE_ADDON pointing at a built addon brings native back', { skip: existsSync(ADDON) ? false : `native addon not built (${ADDON} missing): run \`npm run build:native\`` }, async (t) => {
    const r = await qkdgw(bin, ['selftest', '--json'], envWith({ QKDGW_NATIVE_ADDON: ADDON }));
    t.equal(r.code, 0, 'exit 0');
    const j = parseSelftest(t, r, 'QKDGW_NATIVE_ADDON');
    t.equal(j.chosen?.backend, 'native', 'chosen backend: native');
    t.ok(j.chosen?.why.includes(ADDON), 'the choice names the overriding path');
  });

  t.test('a whole demo from the copy: gateways on node, data intact', async (t) => {
    const r = await qkdgw(bin, ['demo', '--bytes', '1MiB'], envWith(), 50_000);
    const lines = r.stdout.trim().split('\n');
    t.equal(r.code, 0, 'exit 0', { stdout: r.stdout.slice(-2000), stderr: r.stderr.slice(-2000) });
    t.match(lines.at(-1) ?? '', /^demo: OK \d+ bytes verified across \d+ epochs$/, 'verdict: OK');
    t.ok(Number(/OK (\d+) bytes/.exec(lines.at(-1) ?? '')?.[1]) >= 2 * MiB, 'at least 1 MiB each way verified');
    t.match(r.stdout, /^\(b\) 1 MiB upload .*SHA-256 verified both ways$/m, 'the bulk transfer was checked by SHA-256');
    // The line is built from the gateways' own `crypto_backend` log events.
    const aead = lines.find((l) => l.trimStart().startsWith('AEAD backend: '));
    t.ok(aead, 'the demo printed the AEAD backend line');
    t.match(aead ?? '', /^ {2}AEAD backend: node on gw-a and gw-b \(auto chose node: /, 'both gateways logged crypto_backend node');
    t.ok(aead?.includes(copyAddon), "their reason names the copy's missing addon");
    t.match(aead ?? '', /; suite 1 \([^)]*AES-256-GCM\)$/, 'the epochs ran suite 1 (AES-256-GCM, on node)');
    // Its processes really were the copy's: none of them is left either.
    t.notOk((await processArgs()).some((a) => a.includes(copy)), 'no process of the copy is left');
  });
});

t.test('original tree: auto picks the built addon; QKDGW_NATIVE=0 turns it off', async (t) => {
  const bin = join(ROOT, 'bin', 'qkdgw.js');
  t.test('with the addon built, auto chooses native', { skip: existsSync(ADDON) ? false : `native addon not built (${ADDON} missing): run \`npm run build:native\` to test the native choice` }, async (t) => {
    const r = await qkdgw(bin, ['selftest', '--json'], envWith());
    t.equal(r.code, 0, 'exit 0');
    const j = parseSelftest(t, r, 'selftest');
    t.equal(j.chosen?.backend, 'native', 'chosen backend: native');
    t.equal(j.backends.find((b) => b.name === 'native')?.available, true, 'native available');
    t.equal(j.backends.find((b) => b.name === 'native')?.selftest, 'ok', 'native passed its self-test');
  });
  t.test('QKDGW_NATIVE=0 chooses node', async (t) => {
    const r = await qkdgw(bin, ['selftest', '--json'], envWith({ QKDGW_NATIVE: '0' }));
    t.equal(r.code, 0, 'exit 0');
    const j = parseSelftest(t, r, 'selftest QKDGW_NATIVE=0');
    t.equal(j.chosen?.backend, 'node', 'chosen backend: node');
    t.match(j.chosen?.why ?? '', /disabled by QKDGW_NATIVE=0/, 'the choice says the addon was disabled by QKDGW_NATIVE=0');
    t.equal(j.backends.find((b) => b.name === 'native')?.available, false, 'native reported unavailable');
  });
});
