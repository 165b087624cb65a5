// docs/install.md 5b: systemd shows a credential as 0440 (its ACL entry for the service
// user appears in the group bits). checkKeyFileModes lets group read pass for a file directly
// in $CREDENTIALS_DIRECTORY, and nothing else.
import t from 'tap';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkKeyFileModes } from '../../../src/config/files.js';

t.test('credentials folder exemption', async (t) => {
  const dir = t.testdir();
  const creds = join(dir, 'credentials', 'qkdgw.service');
  const lookalike = join(dir, 'credentials', 'qkdgw.service-x');
  mkdirSync(creds, { recursive: true });
  mkdirSync(lookalike);
  const put = (path: string, mode: number): string => {
    writeFileSync(path, 'k');
    chmodSync(path, mode);
    return path;
  };
  const cred = put(join(creds, 'sae.key'), 0o440);
  const check = (path: string, credentialsDir?: string) => () => checkKeyFileModes([{ field: 'kme.key', path }], { credentialsDir });
  t.doesNotThrow(check(cred, creds), '0440 directly in the credentials folder passes');
  t.throws(check(cred), { code: 'QKDGW_E_FILE_PERMISSIONS' }, 'the same file without credentialsDir is refused');
  t.throws(check(put(join(lookalike, 'sae.key'), 0o440), creds), { code: 'QKDGW_E_FILE_PERMISSIONS' }, 'a folder whose name starts with it is not it');
  t.throws(check(put(join(creds, 'o.key'), 0o444), creds), { code: 'QKDGW_E_FILE_PERMISSIONS' }, 'other read is refused even there');
  t.throws(check(put(join(creds, 'gw.key'), 0o460), creds), { code: 'QKDGW_E_FILE_PERMISSIONS' }, 'group write is refused even there');
  const outside = put(join(dir, 'outside.key'), 0o440);
  symlinkSync(outside, join(creds, 'link.key'));
  t.throws(check(join(creds, 'link.key'), creds), { code: 'QKDGW_E_FILE_PERMISSIONS' }, 'a link in the folder to a file elsewhere is judged where the file is');
  t.doesNotThrow(check(put(join(dir, 'ok.key'), 0o600), join(dir, 'missing')), 'a missing credentials folder changes nothing for a 0600 file');
});
