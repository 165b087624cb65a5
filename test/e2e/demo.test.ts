// The quick start's promise: `qkdgw demo` ends with exactly one `demo: OK ...` line and exit 0,
// and leaves no process behind.
import t from 'tap';
import { spawn } from 'node:child_process';
import { QKDGW_BIN } from '../../src/cli/demo/children.js';

t.test('qkdgw demo', async (t) => {
  const p = spawn(process.execPath, [QKDGW_BIN, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (c: Buffer) => (out += c.toString()));
  p.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  const lines = out.trim().split('\n');
  t.equal(code, 0, 'exit 0');
  t.match(lines.at(-1) ?? '', /^demo: OK \d+ bytes verified across \d+ epochs$/, 'last line');
  t.equal(lines.filter((l) => l.startsWith('demo: ')).length, 1, 'exactly one verdict line');
  const n = Number(/across (\d+) epochs/.exec(lines.at(-1) ?? '')?.[1]);
  t.ok(n >= 4, 'first epoch plus at least 3 rekeys');
  const bytes = Number(/OK (\d+) bytes/.exec(lines.at(-1) ?? '')?.[1]);
  t.ok(bytes >= 2 * 64 * 2 ** 20, '64 MiB each way counted');
  // Its children were started with the bin path as argv[1]: none may survive.
  const ps = spawn('ps', ['-eo', 'args'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let list = '';
  ps.stdout.on('data', (c: Buffer) => (list += c.toString()));
  await new Promise((r) => ps.once('exit', r));
  t.notOk(/qkdgw-demo-/.test(list), 'no demo child process left');
});
