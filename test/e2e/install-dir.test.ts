// Issue 5 point 7: "`npm run build` produces a self-contained directory". scripts/assemble.mjs
// builds it into a temporary folder outside the project (no node_modules/ in any parent, so
// nothing can resolve from the repository), and the test installs it the way
// docs/install.md does (a versioned folder behind a symbolic link) and runs the real CLI
// from there: --version, selftest, pki init + check-config of the shipped examples, a key
// file handed over as a systemd credential, and a whole demo (kme-sim and two gateways).
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ASSEMBLE = join(ROOT, 'scripts', 'assemble.mjs');
const ADDON = join(ROOT, 'native', 'build', 'Release', 'qkdgw_native.node');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The test's environment without the backend knobs and without anything that lets Node
 * find modules elsewhere (NODE_PATH; NODE_OPTIONS, where tap puts its own --import hooks).
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['QKDGW_NATIVE', 'QKDGW_NATIVE_ADDON', 'NODE_PATH', 'NODE_OPTIONS', 'CREDENTIALS_DIRECTORY']) delete env[k];
  return { ...env, ...extra };
}

/** Runs `node script ...args` to its end (SIGKILL after `ms`). */
function node(script: string, args: string[], env: NodeJS.ProcessEnv, ms = 30_000, cwd?: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [script, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Every file and folder under `dir`, relative to it. */
function walk(dir: string, rel = ''): Array<{ rel: string; dir: boolean }> {
  const out: Array<{ rel: string; dir: boolean }> = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? join(rel, name) : name;
    const isDir = statSync(join(dir, r)).isDirectory();
    out.push({ rel: r, dir: isDir });
    if (isDir) out.push(...walk(dir, r));
  }
  return out;
}

function processArgs(): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn('ps', ['-eo', 'args'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.once('error', reject);
    p.once('close', () => resolve(out.split('\n')));
  });
}

function json<T>(t: Test, r: Ran, what: string): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    t.fail(`${what}: stdout is not JSON`, { stdout: r.stdout.slice(0, 500), stderr: r.stderr.slice(0, 500) });
    throw new Error(`${what}: no JSON`);
  }
}

t.before(() => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` before the e2e tests');
});

t.test('install path: assembled directory runs on its own', async (t) => {
  // Not t.testdir(): that lies inside the project, whose node_modules/ Node would find by
  // walking up and so hide a missing package.
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'qkdgw-install-')));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const parentsWithModules: string[] = [];
  for (let d = base; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) parentsWithModules.push(d);
    if (d === dirname(d)) break;
  }
  t.same(parentsWithModules, [], `no node_modules/ above ${base} (else the test would prove nothing)`);

  const built = join(base, 'build', 'qkdgw');
  const withAddon = existsSync(ADDON);
  const r = await node(ASSEMBLE, ['--out', built], cleanEnv(), 60_000, base);
  t.equal(r.code, 0, 'assemble exits 0', { stderr: r.stderr });
  const summary = /^assemble: (\S+) (\d+\.\d) MiB, (\d+) files, addon (yes|no)\n$/.exec(r.stdout);
  t.ok(summary, `one summary line: ${r.stdout.trim()}`);
  t.equal(summary?.[1], join('build', 'qkdgw'), 'the path relative to the working directory');
  t.equal(summary?.[4], withAddon ? 'yes' : 'no', `addon ${withAddon ? 'yes: it is built' : 'no: it is not built'}`);
  if (!withAddon) t.match(r.stderr, /WARNING: assembling without the native addon/, 'a missing addon is a warning');
  const entries = walk(built);
  t.equal(Number(summary?.[3]), entries.filter((e) => !e.dir).length, 'the file count is right');

  await t.test('layout, modes, production packages only, no build-machine paths', async (t) => {
    for (const p of ['bin/qkdgw.js', 'dist/cli/main.js', 'config/qkdgw.schema.json', 'config/gateway.example.yaml', 'systemd/qkdgw.service', 'README.md', 'package.json']) {
      t.ok(existsSync(join(built, p)), `${p} is there`);
    }
    t.equal(existsSync(join(built, 'native', 'build', 'Release', 'qkdgw_native.node')), withAddon, 'the addon sits where the loader looks (native/build/Release/) exactly when it was built');
    const pkg = JSON.parse(readFileSync(join(built, 'package.json'), 'utf8')) as Record<string, unknown>;
    t.same(Object.keys(pkg).sort(), ['bin', 'dependencies', 'description', 'engines', 'license', 'name', 'type', 'version'], 'package.json keeps the runtime fields only (no scripts, no devDependencies)');
    t.equal(pkg.type, 'module', 'type: module');
    for (const dep of Object.keys(PKG.dependencies)) t.ok(existsSync(join(built, 'node_modules', dep, 'package.json')), `dependency ${dep} copied`);
    for (const dev of Object.keys(PKG.devDependencies)) t.notOk(existsSync(join(built, 'node_modules', dev)), `devDependency ${dev} left out`);
    t.notOk(existsSync(join(built, 'node_modules', '.bin')), 'no node_modules/.bin');
    t.notOk(entries.some((e) => /^(src|test|scripts|native\/src)(\/|$)/.test(e.rel)), 'no sources, tests or scripts');
    const orphans = entries.filter((e) => !e.dir && e.rel.startsWith('dist/') && /\.js$/.test(e.rel) && !existsSync(join(ROOT, 'src', e.rel.slice(5).replace(/\.js$/, '.ts'))));
    t.same(orphans.map((e) => e.rel), [], 'every dist/*.js has its src/*.ts (stale tsc output left out)');
    const badModes = entries.filter((e) => {
      const m = statSync(join(built, e.rel)).mode & 0o7777;
      return e.dir ? m !== 0o755 : m !== 0o644 && m !== 0o755;
    });
    t.same(badModes.map((e) => e.rel).slice(0, 5), [], 'folders 0755, files 0644 or 0755');
    t.equal(statSync(join(built, 'bin', 'qkdgw.js')).mode & 0o777, 0o755, 'bin/qkdgw.js is executable');
    // Paths into the project's own folders: specific enough not to match by chance in a
    // third-party file even when the checkout lives somewhere short like /src/.
    const needles = ['src', 'dist', 'native', 'node_modules', 'bin', 'config'].map((d) => join(ROOT, d, '/'));
    const leaks = entries.filter((e) => {
      if (e.dir) return false;
      const bytes = readFileSync(join(built, e.rel));
      return needles.some((n) => bytes.includes(n));
    });
    t.same(leaks.map((e) => e.rel), [], `no file names a path under the build folder ${ROOT}`);
  });

  await t.test('a rebuild replaces the folder whole; a foreign folder is never replaced', async (t) => {
    writeFileSync(join(built, 'stale.txt'), 'left from before\n');
    // What a killed run leaves: pid 2^22 + 1 is above Linux's highest pid, so never alive.
    mkdirSync(join(dirname(built), '.qkdgw.tmp-4194305', 'dist'), { recursive: true });
    const again = await node(ASSEMBLE, ['--out', built], cleanEnv(), 60_000, base);
    t.equal(again.code, 0, 'second assemble exits 0', { stderr: again.stderr });
    t.notOk(existsSync(join(built, 'stale.txt')), 'a file of the old assembly is gone');
    t.same(readdirSync(dirname(built)), ['qkdgw'], "no temporary or old folder left beside it, a killed run's included");
    const foreign = join(base, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'keep.txt'), 'mine\n');
    const refused = await node(ASSEMBLE, ['--out', foreign], cleanEnv(), 60_000, base);
    t.equal(refused.code, 1, 'exit 1 for a folder that is not an assembly');
    t.match(refused.stderr, /is not an earlier qkdgw assembly/, 'and says why');
    t.ok(existsSync(join(foreign, 'keep.txt')), 'its contents are untouched');
    const intoRepo = await node(ASSEMBLE, ['--out', dirname(ROOT)], cleanEnv(), 60_000, base);
    t.equal(intoRepo.code, 1, 'exit 1 for a folder holding the project');
  });

  // Installed as docs/install.md does it: /opt/qkdgw-<version>, /opt/qkdgw -> qkdgw-<version>.
  const opt = join(base, 'opt');
  mkdirSync(opt);
  renameSync(built, join(opt, `qkdgw-${PKG.version}`));
  symlinkSync(`qkdgw-${PKG.version}`, join(opt, 'qkdgw'));
  const home = join(opt, 'qkdgw');
  const real = join(opt, `qkdgw-${PKG.version}`);
  const bin = join(home, 'bin', 'qkdgw.js');

  await t.test('--version', async (t) => {
    const v = await node(bin, ['--version'], cleanEnv());
    t.equal(v.code, 0, 'exit 0', { stderr: v.stderr });
    t.equal(v.stdout, `qkdgw ${PKG.version} (node ${process.version})\n`, 'the version of the assembled package.json');
  });

  await t.test('selftest --json', async (t) => {
    const s = await node(bin, ['selftest', '--json'], cleanEnv());
    t.equal(s.code, 0, 'exit 0', { stderr: s.stderr });
    const j = json<{ ok: boolean; backends: Array<{ name: string; available: boolean; detail: string }>; chosen: { backend: string } | null }>(t, s, 'selftest');
    t.equal(j.ok, true, 'every check passed');
    const native = j.backends.find((b) => b.name === 'native');
    if (withAddon) {
      t.equal(native?.available, true, 'native available');
      t.ok(native?.detail.includes(join(real, 'native', 'build', 'Release', 'qkdgw_native.node')), `the addon loaded is the installed copy (${native?.detail})`);
      t.equal(j.chosen?.backend, 'native', 'auto chose native');
    } else {
      t.equal(native?.available, false, 'native unavailable: not built');
      t.equal(j.chosen?.backend, 'node', 'auto fell back to node');
    }
    t.notOk(s.stdout.includes(ROOT), 'nothing comes from the project folder');
  });

  // The shipped examples with a PKI made by the installed CLI, as in docs/install.md.
  const etc = join(base, 'etc', 'qkdgw');
  mkdirSync(etc, { recursive: true });
  copyFileSync(join(home, 'config', 'gateway.example.yaml'), join(etc, 'qkdgw.yaml'));
  copyFileSync(join(home, 'config', 'kme-sim.example.yaml'), join(etc, 'kme-sim.yaml'));

  await t.test('pki init, then check-config of both shipped examples', async (t) => {
    const p = await node(bin, ['pki', 'init', '--out', join(etc, 'pki'), '--gateways', 'SAE_MAD_A,SAE_MAD_B', '--kmes', 'KME_MAD_A,KME_MAD_B'], cleanEnv());
    t.equal(p.code, 0, 'pki init exits 0', { stderr: p.stderr });
    const g = await node(bin, ['check-config', join(etc, 'qkdgw.yaml')], cleanEnv());
    t.equal(g.code, 0, 'check-config gateway.example.yaml exits 0', { stderr: g.stderr });
    const cfg = json<{ identity: string; kme: { key: string } }>(t, g, 'check-config');
    t.equal(cfg.identity, 'SAE_MAD_A', 'the normalised config');
    t.equal(cfg.kme.key, join(etc, 'pki', 'sae-SAE_MAD_A.key'), 'relative paths resolved against the config folder');
    const k = await node(bin, ['check-config', '--kme-sim', join(etc, 'kme-sim.yaml')], cleanEnv());
    t.equal(k.code, 0, 'check-config --kme-sim kme-sim.example.yaml exits 0', { stderr: k.stderr });
  });

  await t.test('a private key handed over as a systemd credential (docs/install.md)', async (t) => {
    // systemd writes a credential 0400 plus an ACL entry for the service user; stat shows
    // the ACL mask in the group bits, 0440 (src/core/exec-credential.c write_credential).
    const creds = join(base, 'run', 'credentials', 'qkdgw.service');
    mkdirSync(creds, { recursive: true });
    copyFileSync(join(etc, 'pki', 'sae-SAE_MAD_A.key'), join(creds, 'sae.key'));
    chmodSync(join(creds, 'sae.key'), 0o440);
    const yaml = readFileSync(join(etc, 'qkdgw.yaml'), 'utf8').replace('key: pki/sae-SAE_MAD_A.key', `key: ${join(creds, 'sae.key')}`);
    t.not(yaml, readFileSync(join(etc, 'qkdgw.yaml'), 'utf8'), 'kme.key now names the credential');
    writeFileSync(join(etc, 'cred.yaml'), yaml);
    const inService = await node(bin, ['check-config', join(etc, 'cred.yaml')], cleanEnv({ CREDENTIALS_DIRECTORY: creds }));
    t.equal(inService.code, 0, 'with CREDENTIALS_DIRECTORY set (as systemd does), its 0440 file is accepted', { stderr: inService.stderr });
    const outside = await node(bin, ['check-config', join(etc, 'cred.yaml')], cleanEnv());
    t.equal(outside.code, 78, 'without it the same file is refused (exit 78)');
    t.match(outside.stderr, /cred\.yaml:\d+:\d+: kme\.key: .*mode 0440/, 'as open to the group, located in the file');
  });

  await t.test('the whole demo runs from the installed folder', async (t) => {
    const work = join(base, 'tmp');
    mkdirSync(work);
    const d = await node(bin, ['demo', '--bytes', '1MiB'], cleanEnv({ TMPDIR: work }), 60_000);
    const lines = d.stdout.trim().split('\n');
    t.equal(d.code, 0, 'exit 0', { stdout: d.stdout.slice(-2000), stderr: d.stderr.slice(-2000) });
    t.match(lines.at(-1) ?? '', /^demo: OK \d+ bytes verified across \d+ epochs$/, 'verdict: OK');
    const aead = lines.find((l) => l.trimStart().startsWith('AEAD backend: ')) ?? '';
    t.match(aead, new RegExp(`AEAD backend: ${withAddon ? 'native' : 'node'} on gw-a and gw-b`), `both gateways on ${withAddon ? 'the installed addon' : 'node:crypto'}`);
    if (withAddon) t.ok(aead.includes(real), 'the gateways loaded the installed addon');
    t.notOk((await processArgs()).some((a) => a.includes(base)), 'no process of the installed folder is left');
  });

  await t.test('the installed folder was not written to', async (t) => {
    const now = walk(real).map((e) => e.rel);
    t.same(now, entries.map((e) => e.rel), 'same files as assembled (it can be read-only: ProtectSystem=strict)');
    t.equal(relative(home, realpathSync(home)), join('..', `qkdgw-${PKG.version}`), 'still behind the symbolic link');
  });
});
