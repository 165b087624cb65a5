// E2E, issue 5: `qkdgw audit verify FILE` on an intact and on tampered key audit trails;
// exit 0 intact, 1 broken (line and reason), 64 usage, 66 (EX_NOINPUT) no such file.
// Runs the built CLI (npm run build first).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QKDGW_BIN } from '../../src/cli/demo/children.js';
import { AuditTrail } from '../../src/daemon/audit.js';

const run = (...args: string[]) => spawnSync(process.execPath, [QKDGW_BIN, 'audit', ...args], { encoding: 'utf8', timeout: 20_000 });
const KID = '6b1f3c2a-9d4e-4f10-8a7b-0c1d2e3f4a5b';

function trail(dir: string): string {
  const f = join(dir, 'audit.jsonl');
  const tr = AuditTrail.open(f);
  tr.record({ event: 'key_fetched', peer: 'gw-b', key_ID: KID, reason: 'enc_keys (key pool)' });
  tr.record({ event: 'handshake_started', peer: 'gw-b', epoch: 1, mode: 'qkd' });
  tr.record({ event: 'epoch_switch', peer: 'gw-b', epoch: 1, key_ID: KID, mode: 'qkd' });
  tr.close();
  return f;
}

t.test('an intact trail: exit 0, line count and the head hash prefix', async (t) => {
  const f = trail(t.testdir());
  const lines = readFileSync(f, 'utf8').split('\n').slice(0, -1);
  const head = createHash('sha256').update(lines.at(-1)!).digest('hex');
  const r = run('verify', f);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^audit: OK 5 lines, chain intact, last ${head.slice(0, 16)}`));
  t.equal(r.stderr, '');
});

t.test('tampered trails: exit 1 with the line and the reason', async (t) => {
  const dir = t.testdir();
  const f = trail(dir);
  const lines = readFileSync(f, 'utf8').split('\n').slice(0, -1);
  const write = (ls: string[]) => {
    const g = join(dir, 'tampered.jsonl');
    writeFileSync(g, ls.map((l) => `${l}\n`).join(''));
    return run('verify', g);
  };
  const cases: Array<[string, string[], RegExp]> = [
    ['key_ID changed', [lines[0], lines[1].replace(KID, KID.replace('6b', '6c')), ...lines.slice(2)], /BROKEN at line 3: prev .* not the SHA-256 of line 2/],
    ['line deleted', [lines[0], ...lines.slice(2)], /BROKEN at line 2: seq 3 where 2 was expected/],
    ['pair reordered', [lines[0], lines[2], lines[1], ...lines.slice(3)], /BROKEN at line 2: seq 3 where 2 was expected/],
    ['line inserted', [...lines.slice(0, 3), lines[1], ...lines.slice(3)], /BROKEN at line 4: seq 2 where 4 was expected/],
  ];
  for (const [what, ls, re] of cases) {
    const r = write(ls);
    t.equal(r.status, 1, `${what}: exit 1`);
    t.match(r.stdout, re, `${what}: line and reason`);
  }
  writeFileSync(f, `${readFileSync(f, 'utf8')}{"seq":6,"ti`);
  const torn = run('verify', f);
  t.equal(torn.status, 1, 'torn last line: exit 1 until the gateway reopens the file');
  t.match(torn.stdout, /BROKEN at line 6: line 6 torn at the end of the file/);
  AuditTrail.open(f).close();
  const healed = run('verify', f);
  t.equal(healed.status, 0, 'reopened: the torn line is closed by chain_resumed_after_torn_line');
  t.match(healed.stdout, /audit: OK 9 lines, chain intact[^\n]*\naudit: 1 torn line\(s\) closed by chain_resumed_after_torn_line: 6\n/);
});

t.test('usage 64, missing file 66', async (t) => {
  t.equal(run().status, 64);
  t.equal(run('verify').status, 64);
  t.equal(run('check', 'x').status, 64);
  t.equal(run('verify', 'a', 'b').status, 64);
  t.equal(run('verify', '--bogus', 'a').status, 64);
  const m = run('verify', join(t.testdir(), 'nope.jsonl'));
  t.equal(m.status, 66, 'EX_NOINPUT');
  t.match(m.stderr, /cannot be opened \(ENOENT\)/);
  const h = spawnSync(process.execPath, [QKDGW_BIN, '--help'], { encoding: 'utf8' });
  t.match(h.stdout, /qkdgw audit verify FILE/);
});
