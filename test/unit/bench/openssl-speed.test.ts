// npm run bench:crypto, the openssl reference: the command line, the parsing of
// `openssl speed` tables (the real OpenSSL 3.0.19 output, small figures without `k`,
// missing and garbled lines), and the missing-CLI path.
import t from 'tap';
import { OPENSSL_MISSING, opensslSpeedArgs, opensslVersion, parseOpensslSpeed, runOpensslSpeed, type OpensslExec } from '../../../src/bench/openssl-speed.js';

// Verbatim stdout of `openssl speed -elapsed -aead -evp aes-256-gcm -bytes 1400 -seconds 1` (OpenSSL 3.0.19).
const REAL = `version: 3.0.19
built on: Fri Apr  3 12:29:32 2026 UTC
options: bn(64,64)
compiler: gcc -fPIC -pthread -m64 -Wa,--noexecstack -Wall -O2 -DNDEBUG
CPUINFO: OPENSSL_ia32cap=0xfffa3203078bffff:0x405fc6f1bf07ab
The 'numbers' are in 1000s of bytes per second processed.
type           1400 bytes
AES-256-GCM    1392067.60k
`;

t.test('the command line: -elapsed -aead -evp aes-256-gcm, whole seconds >= 1 (OpenSSL 3.0 refuses 0 and 0.5)', async (t) => {
  t.same(opensslSpeedArgs(1400, 1), ['speed', '-elapsed', '-aead', '-evp', 'aes-256-gcm', '-bytes', '1400', '-seconds', '1']);
  t.equal(opensslSpeedArgs(64, 0.02).at(-1), '1');
  t.equal(opensslSpeedArgs(64, 2.2).at(-1), '3');
});

t.test('parses the real table: k = 1000s of bytes per second, packets/s = bytes/s / record size', async (t) => {
  const r = parseOpensslSpeed(REAL, 1400);
  t.ok(r.ok);
  if (!r.ok) return;
  t.equal(r.bytesPerSec, 1392067600);
  t.equal(r.packetsPerSec, 1392067600 / 1400);
});

t.test('a figure without k is bytes per second (OpenSSL prints small rates so)', async (t) => {
  const r = parseOpensslSpeed('type             64 bytes\nAES-256-GCM       9876.50 \n', 64);
  t.ok(r.ok);
  if (r.ok) t.equal(r.bytesPerSec, 9876.5);
});

t.test('missing and garbled output gives a reason, never a number', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['', 'empty output', /no "type \.\.\. bytes" header/],
    [REAL.replace(/^AES-256-GCM.*$/m, ''), 'no AES-256-GCM line', /no AES-256-GCM line/],
    [REAL.replace('1392067.60k', '13920x67.60k'), 'garbled figure', /garbled AES-256-GCM figure "13920x67.60k"/],
    [REAL.replace('1392067.60k', '0.00k'), 'zero rate', /not a positive rate/],
    [REAL.replace('1400 bytes', '64 bytes'), 'table of another size', /measured 64 bytes, expected 1400/],
    [REAL.replace('AES-256-GCM    1392067.60k', 'AES-256-GCM'), 'line without a figure', /no AES-256-GCM line/],
  ];
  for (const [out, what, reason] of cases) {
    const r = parseOpensslSpeed(out, 1400);
    t.notOk(r.ok, what);
    if (!r.ok) t.match(r.reason, reason, what);
  }
});

t.test('a missing CLI says to install it and never rejects', async (t) => {
  const enoent: OpensslExec = async () => {
    throw Object.assign(new Error('spawn openssl ENOENT'), { code: 'ENOENT' });
  };
  const r = await runOpensslSpeed(1400, 1, enoent);
  t.same(r, { ok: false, reason: OPENSSL_MISSING });
  t.match(OPENSSL_MISSING, /apt-get install openssl/);
  t.same(await opensslVersion(enoent), { ok: false, reason: OPENSSL_MISSING });
  const dies: OpensslExec = async () => {
    throw new Error('Command failed: openssl speed: Non-positive number "0" for option -seconds');
  };
  const d = await runOpensslSpeed(64, 1, dies);
  t.notOk(d.ok);
  if (!d.ok) t.match(d.reason, /^openssl failed: .*Non-positive/);
});

t.test('runOpensslSpeed passes the arguments and a timeout past the run, then parses', async (t) => {
  const seen: Array<[string[], number]> = [];
  const fake: OpensslExec = async (args, timeoutMs) => {
    seen.push([args, timeoutMs]);
    return REAL;
  };
  const r = await runOpensslSpeed(1400, 2, fake);
  t.ok(r.ok);
  t.same(seen[0]![0], opensslSpeedArgs(1400, 2));
  t.ok(seen[0]![1] > 2000, 'timeout longer than the measuring time');
});
