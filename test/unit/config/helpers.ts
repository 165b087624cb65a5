/** Shared fixtures for the config tests (not a test file itself). */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { ConfigError, type ConfigIssue } from '../../../src/config/issues.js';

/**
 * A minimal valid gateway file. Line numbers matter to the tests:
 *  1 identity, 2 kme, 3 url, 4 ca, 5 cert, 6 key, 7 control, 8 ca, 9 cert, 10 key,
 *  11 peers, 12 "- identity: SAE_B", 13 control; appended text starts at line 14.
 */
export const BASE = `identity: SAE_A
kme:
  url: https://kme-a.test:8443/api/v1
  ca: pki/ca.pem
  cert: pki/sae.pem
  key: pki/sae.key
control:
  ca: pki/control-ca.pem
  cert: pki/gw.pem
  key: pki/gw.key
peers:
  - identity: SAE_B
    control: 127.0.0.1:7443
`;

/** Writes `text` as `name` in `dir` and returns its path. */
export function writeConfig(dir: string, name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

/** Creates the PEM-looking files BASE refers to, keys with `keyMode`. */
export function makePki(dir: string, keyMode = 0o600): void {
  mkdirSync(join(dir, 'pki'), { recursive: true });
  for (const f of ['ca.pem', 'sae.pem', 'control-ca.pem', 'gw.pem']) {
    writeFileSync(join(dir, 'pki', f), '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n');
  }
  for (const f of ['sae.key', 'gw.key']) {
    const p = join(dir, 'pki', f);
    writeFileSync(p, '-----BEGIN PRIVATE KEY-----\nMA==\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
    chmodSync(p, keyMode);
  }
}

export interface ExpectedIssue {
  line: number;
  col: number;
  path: string;
  /** A fragment of the message. */
  msg: string | RegExp;
}

/** Runs `fn`, which must throw a ConfigError with `code` and exactly the `expected` issues (in order). */
export function expectIssues(t: Test, fn: () => unknown, code: string, expected: ExpectedIssue[]): ConfigIssue[] {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof ConfigError)) {
    t.fail(`expected a ConfigError, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    return [];
  }
  t.equal(err.code, code, 'error code');
  const got = err.issues.map((i) => ({ line: i.line, col: i.col, path: i.path, message: i.message }));
  t.equal(got.length, expected.length, `issue count; got:\n${err.format()}`);
  expected.forEach((x, k) => {
    const g = got[k];
    if (!g) return;
    t.same({ line: g.line, col: g.col, path: g.path }, { line: x.line, col: x.col, path: x.path }, `issue ${k} position: ${g.message}`);
    if (typeof x.msg === 'string') t.ok(g.message.includes(x.msg), `issue ${k} message has ${JSON.stringify(x.msg)}: ${g.message}`);
    else t.match(g.message, x.msg, `issue ${k} message`);
  });
  return [...err.issues];
}
