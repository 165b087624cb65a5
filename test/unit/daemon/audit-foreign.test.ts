// Breaker finding: audit.file naming an existing file that is not a trail (a YAML file,
// /etc/passwd) must be refused before a byte is appended; a trail whose first lines are not
// records is reported broken by `verify`, whatever follows.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditTrail } from '../../../src/daemon/audit.js';
import { verifyAuditFile } from '../../../src/daemon/audit-verify.js';
import { ErrorCodes, isQkdgwError } from '../../../src/errors.js';

t.test('a foreign file is refused at open and left untouched', async (t) => {
  const dir = t.testdir();
  for (const [name, text] of [
    ['gw.yaml', 'identity: gw-a\nkme:\n  url: https://127.0.0.1:1/api/v1\n'],
    ['passwd', 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n'],
    ['one-json.jsonl', '{"hello":"world"}\n'],
  ] as const) {
    const f = join(dir, name);
    writeFileSync(f, text, { mode: 0o600 });
    let code: string | undefined;
    try {
      AuditTrail.open(f).close();
    } catch (e) {
      code = isQkdgwError(e) ? e.code : String(e);
    }
    t.equal(code, ErrorCodes.AUDIT_FILE, `${name}: refused`);
    t.equal(readFileSync(f, 'utf8'), text, `${name}: not a byte appended`);
  }
});

t.test('verify: several non-record lines at the start are not a torn write', async (t) => {
  const dir = t.testdir();
  const good = join(dir, 'good.jsonl');
  AuditTrail.open(good).close();
  const f = join(dir, 'bad.jsonl');
  writeFileSync(f, `line one\nline two\n${readFileSync(good, 'utf8')}`);
  const v = verifyAuditFile(f);
  t.equal(v.ok, false);
  t.equal(v.firstBad?.line, 1);
});
