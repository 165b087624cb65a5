// E2E: a bad configuration is refused with FILE:LINE:COL and the field path; exit 78; nothing starts.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QKDGW_BIN } from '../../src/cli/demo/children.js';

const run = (...args: string[]) => spawnSync(process.execPath, [QKDGW_BIN, ...args], { encoding: 'utf8', timeout: 20_000 });

t.test('check-config and run refuse a bad file with exit 78 and a located message', async (t) => {
  const dir = t.testdir();
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'identity: gw-a\nkme:\n  url: https://127.0.0.1:1/api/v1\n  timeout: 5 parsecs\n');
  for (const cmd of [['check-config', bad], ['run', '--config', bad]]) {
    const r = run(...cmd);
    t.equal(r.status, 78, `${cmd[0]} exits 78 (EX_CONFIG)`);
    t.match(r.stderr, /bad\.yaml:4:\d+: kme\.timeout: /, `${cmd[0]} names file:line:col and the field path`);
    t.equal(r.stdout, '', `${cmd[0]} printed nothing on stdout (no log: nothing started)`);
  }
});

t.test('empty file: "configuration is empty", exit 78', async (t) => {
  const dir = t.testdir();
  const f = join(dir, 'empty.yaml');
  writeFileSync(f, '# nothing\n');
  const r = run('check-config', f);
  t.equal(r.status, 78);
  t.match(r.stderr, /empty/);
});

t.test('usage errors exit 64', async (t) => {
  t.equal(run('run').status, 64);
  t.equal(run('frobnicate').status, 64);
  t.equal(run('run', '--bogus').status, 64);
});

t.test('selftest passes', async (t) => {
  const r = run('selftest');
  t.equal(r.status, 0);
  t.match(r.stdout, /^ok\s+AES-256-GCM/m);
});

t.test('--help and --version', async (t) => {
  const h = run('run', '--help');
  t.equal(h.status, 0);
  t.match(h.stdout, /qkdgw run --config FILE/);
  const v = run('--version');
  t.equal(v.status, 0);
  t.match(v.stdout, /^qkdgw \d+\.\d+\.\d+/);
});

t.test('check-config prints every shipped config/ file normalised (--no-file-checks: templates name PKI files not present here)', async (t) => {
  const { readdirSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const dir = fileURLToPath(new URL('../../config/', import.meta.url));
  const yamls = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  t.ok(yamls.length >= 2, `${yamls.length} files`);
  for (const f of yamls) {
    const sim = f.startsWith('kme-sim');
    const r = run('check-config', ...(sim ? ['--kme-sim'] : []), '--no-file-checks', join(dir, f));
    t.equal(r.status, 0, `${f}: exit 0 ${r.stderr}`);
    const cfg = JSON.parse(r.stdout) as Record<string, unknown>;
    t.ok(sim ? Array.isArray(cfg.kmes) : typeof cfg.identity === 'string', `${f}: the normalised config as JSON`);
    if (!sim) t.equal((cfg.shutdown as { drainTimeoutMs: number }).drainTimeoutMs, 20_000, `${f}: defaults filled in, durations in ms`);
    const strict = run('check-config', ...(sim ? ['--kme-sim'] : []), join(dir, f));
    t.equal(strict.status, 78, `${f}: without the flag its missing PKI files are refused`);
    t.match(strict.stderr, /file not found/);
  }
});
