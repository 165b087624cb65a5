/**
 * The generic loader against a small schema: YAML-level rules from field reports BC-33
 * (numbers) and BC-35 (duplicate keys, empty files, __proto__), aliases, tags, syntax
 * errors, schema messages and their positions.
 */
import t from 'tap';
import { ErrorCodes } from '../../../src/errors.js';
import { ConfigError, formatConfigError, formatPath } from '../../../src/config/issues.js';
import { loadYamlFile, type JsonSchema } from '../../../src/config/load-yaml.js';
import { expectIssues, writeConfig } from './helpers.js';

const schema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    kms: { type: 'object', additionalProperties: false, properties: { url: { type: 'string' } } },
    state_dir_mode: { type: 'integer', 'x-octal': true },
    key_file_mode: { type: 'integer', 'x-octal': true },
    policy: {
      type: 'object',
      additionalProperties: false,
      properties: {
        reject_after_messages: { type: 'integer' },
        rekey_after_messages: { type: 'integer', minimum: 1 },
        ratio: { type: 'number' },
        require_qkd: { type: 'boolean' },
      },
    },
    peers: {
      type: 'array',
      items: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', 'x-expected': 'a peer name' } } },
    },
    list: { type: 'array' },
    name: { type: 'string', default: 'dflt' },
  },
};

const load = (dir: string, text: string) => loadYamlFile(writeConfig(dir, 'c.yaml', text), schema);

t.test('BC-35a duplicate keys are refused with the key and its line', async (t) => {
  const dir = t.testdir();
  expectIssues(t, () => load(dir, 'kms:\n  url: https://kms-a.example:8443\nkms:\n  url: https://kms-b.example:8443\n'), ErrorCodes.CONFIG_INVALID, [
    { line: 3, col: 1, path: 'kms', msg: 'duplicate key kms (first written at line 1)' },
  ]);
  expectIssues(t, () => load(dir, 'kms:\n  url: a\n  url: b\n'), ErrorCodes.CONFIG_INVALID, [
    { line: 3, col: 3, path: 'kms.url', msg: 'duplicate key url' },
  ]);
});

t.test('BC-35b an empty or comment-only file is "configuration is empty"', async (t) => {
  const dir = t.testdir();
  for (const [label, text] of [
    ['zero bytes', ''],
    ['only a comment', '# comment\n'],
    ['whitespace and comments', '\n   \n# a\n  # b\n'],
    ['a bare document marker', '---\n'],
  ]) {
    const issues = expectIssues(t, () => load(dir, text), ErrorCodes.CONFIG_EMPTY, [{ line: 1, col: 1, path: '(root)', msg: 'configuration is empty' }]);
    t.equal(issues.length, 1, label);
  }
});

t.test('BC-35d __proto__, constructor and prototype keys are refused; no prototype changes', async (t) => {
  const dir = t.testdir();
  const text = '__proto__:\n  require_qkd: false\npeers:\n  - name: b\n    __proto__: { allow_insecure_kms_tls: true }\npolicy:\n  constructor: 1\n  prototype: 2\n';
  expectIssues(t, () => load(dir, text), ErrorCodes.CONFIG_INVALID, [
    { line: 1, col: 1, path: '__proto__', msg: 'forbidden key "__proto__"' },
    { line: 5, col: 5, path: 'peers[0].__proto__', msg: 'forbidden key "__proto__"' },
    { line: 7, col: 3, path: 'policy.constructor', msg: 'forbidden key "constructor"' },
    { line: 8, col: 3, path: 'policy.prototype', msg: 'forbidden key "prototype"' },
  ]);
  const probe = {} as Record<string, unknown>;
  t.equal(probe.require_qkd, undefined, 'an empty object literal has no require_qkd');
  t.equal(probe.allow_insecure_kms_tls, undefined, 'an empty object literal has no allow_insecure_kms_tls');
  t.equal(Object.getPrototypeOf(probe), Object.prototype);
});

t.test('BC-33 plain numbers with a leading zero are refused; 0o600 and "0600" are accepted', async (t) => {
  const dir = t.testdir();
  expectIssues(t, () => load(dir, 'state_dir_mode: 0700\nkey_file_mode: 0600\n'), ErrorCodes.CONFIG_INVALID, [
    { line: 1, col: 17, path: 'state_dir_mode', msg: 'write "0700" as a quoted string, or 0o700 for octal' },
    { line: 2, col: 16, path: 'key_file_mode', msg: 'reads as decimal 600; write "0600" as a quoted string, or 0o600' },
  ]);
  const ok = load(dir, 'state_dir_mode: 0o700\nkey_file_mode: 0o600\nname: "0600"\n');
  t.same(ok.data, { state_dir_mode: 448, key_file_mode: 384, name: '0600' });
  t.same(load(dir, 'key_file_mode: 0\n').data, { key_file_mode: 0, name: 'dflt' }, 'a lone 0 is fine');
});

t.test('BC-33 hex and octal notation are refused for counts (0x10 is not a count anybody means); octal only where the schema says x-octal', async (t) => {
  const dir = t.testdir();
  expectIssues(t, () => load(dir, 'policy:\n  reject_after_messages: 0x10\n'), ErrorCodes.CONFIG_INVALID, [
    { line: 2, col: 26, path: 'policy.reject_after_messages', msg: 'expected an integer written as plain decimal digits, got 0x10 (write 16)' },
  ]);
  expectIssues(t, () => load(dir, 'policy:\n  reject_after_messages: 0o20\n'), ErrorCodes.CONFIG_INVALID, [
    { line: 2, col: 26, path: 'policy.reject_after_messages', msg: 'got 0o20 (write 16)' },
  ]);
  expectIssues(t, () => load(dir, 'key_file_mode: 0x180\n'), ErrorCodes.CONFIG_INVALID, [{ line: 1, col: 16, path: 'key_file_mode', msg: 'got 0x180 (write 384)' }]);
  t.same(load(dir, 'policy:\n  reject_after_messages: 16\n').data, { policy: { reject_after_messages: 16 }, name: 'dflt' }, 'decimal is fine');
});

t.test('BC-33 a 20-digit integer is refused, not rounded', async (t) => {
  const dir = t.testdir();
  expectIssues(t, () => load(dir, 'policy:\n  reject_after_messages: 18446744073709543423\n'), ErrorCodes.CONFIG_INVALID, [
    { line: 2, col: 26, path: 'policy.reject_after_messages', msg: 'integer 18446744073709543423 is out of range' },
  ]);
  t.same(load(dir, 'policy:\n  reject_after_messages: 9007199254740991\n').data, { policy: { reject_after_messages: 9007199254740991 }, name: 'dflt' }, '2^53-1 is exact');
  expectIssues(t, () => load(dir, 'policy:\n  reject_after_messages: 9007199254740992\n'), ErrorCodes.CONFIG_INVALID, [
    { line: 2, col: 26, path: 'policy.reject_after_messages', msg: 'out of range' },
  ]);
});

t.test('BC-33 exponent or float notation is refused where an integer is expected', async (t) => {
  const dir = t.testdir();
  expectIssues(t, () => load(dir, 'policy:\n  rekey_after_messages: 1e9\n  reject_after_messages: 5.0\n'), ErrorCodes.CONFIG_INVALID, [
    { line: 2, col: 25, path: 'policy.rekey_after_messages', msg: 'expected an integer written as plain digits, got number 1000000000 in float or exponent notation' },
    { line: 3, col: 26, path: 'policy.reject_after_messages', msg: 'float or exponent notation' },
  ]);
  t.same(load(dir, 'policy:\n  ratio: 1e-3\n  rekey_after_messages: 1000000000\n').data, {
    policy: { ratio: 0.001, rekey_after_messages: 1000000000 },
    name: 'dflt',
  }, 'floats are fine where the schema wants a number; plain digits are fine for integers');
});

t.test('alias bomb is refused; a few aliases are fine', async (t) => {
  const dir = t.testdir();
  const bomb = [
    'list:',
    '  - &a [x, x, x, x, x, x, x, x, x]',
    '  - &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
    '  - &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
    '  - &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
    '',
  ].join('\n');
  const issues = expectIssues(t, () => load(dir, bomb), ErrorCodes.CONFIG_INVALID, [
    // b holds 9 derefs; each *b in c costs 10: c[4] reaches 50, and its first *a (line 3) is the 51st
    { line: 3, col: 9, path: 'list[2][4][0]', msg: 'more than 50 alias expansions' },
  ]);
  t.equal(issues.length, 1);
  t.same(load(dir, 'list: [&n {a: 1}, *n]\n').data, { list: [{ a: 1 }, { a: 1 }], name: 'dflt' });
  expectIssues(t, () => load(dir, 'list: [*nowhere]\n'), ErrorCodes.CONFIG_INVALID, [{ line: 1, col: 8, path: 'list[0]', msg: 'refers to no anchor' }]);
});

t.test('unknown fields, wrong types, required fields: path, line, col and what is expected', async (t) => {
  const dir = t.testdir();
  expectIssues(t, () => load(dir, 'kms:\n  ulr: x\nname: 5\npeers:\n  - {}\n  - name: [a]\nstate_dir_mode: "700"\npolicy:\n  require_qkd: "no"\n'), ErrorCodes.CONFIG_INVALID, [
    { line: 2, col: 3, path: 'kms.ulr', msg: 'unknown field; did you mean url?' },
    { line: 3, col: 7, path: 'name', msg: 'expected a string, got number 5' },
    { line: 5, col: 5, path: 'peers[0].name', msg: 'missing required field: a peer name' },
    { line: 6, col: 5, path: 'peers[1].name', msg: 'expected a peer name, got a list of 1' },
    { line: 7, col: 17, path: 'state_dir_mode', msg: 'expected an integer, got "700"' },
    { line: 9, col: 16, path: 'policy.require_qkd', msg: 'expected true or false, got "no"' },
  ]);
});

t.test('YAML syntax errors, tags and multiple documents are reported with positions', async (t) => {
  const dir = t.testdir();
  expectIssues(t, () => load(dir, 'kms:\n  url: [a\n'), ErrorCodes.CONFIG_INVALID, [{ line: 3, col: 1, path: '(root)', msg: /^YAML: Flow sequence/ }]);
  expectIssues(t, () => load(dir, 'kms:\n\turl: a\n'), ErrorCodes.CONFIG_INVALID, [{ line: 2, col: 1, path: '(root)', msg: 'YAML: Tabs are not allowed' }]);
  expectIssues(t, () => load(dir, 'name: !!binary aGk=\n'), ErrorCodes.CONFIG_INVALID, [{ line: 1, col: 16, path: 'name', msg: 'YAML tag !!binary is not accepted' }]);
  t.same(load(dir, 'name: !!str 0600\n').data, { name: '0600' }, '!!str is accepted');
  expectIssues(t, () => load(dir, 'name: a\n---\nname: b\n'), ErrorCodes.CONFIG_INVALID, [{ line: 2, col: 1, path: '(root)', msg: 'a single YAML document' }]);
  expectIssues(t, () => load(dir, '? [a]\n: 1\n'), ErrorCodes.CONFIG_INVALID, [{ line: 1, col: 3, path: '(root)', msg: 'mapping keys must be plain text' }]);
  expectIssues(t, () => load(dir, '- a\n'), ErrorCodes.CONFIG_INVALID, [{ line: 1, col: 1, path: '(root)', msg: 'expected a mapping, got a list of 1' }]);
});

t.test('an unreadable file is QKDGW_E_CONFIG_READ; so is one that is not UTF-8', async (t) => {
  const dir = t.testdir({ 'bad.yaml': Buffer.from([0x6e, 0x3a, 0x20, 0xff, 0xfe, 0x0a]) });
  expectIssues(t, () => loadYamlFile(`${dir}/missing.yaml`, schema), ErrorCodes.CONFIG_READ, [{ line: 1, col: 1, path: '(root)', msg: 'ENOENT' }]);
  expectIssues(t, () => loadYamlFile(dir, schema), ErrorCodes.CONFIG_READ, [{ line: 1, col: 1, path: '(root)', msg: 'not a regular file' }]);
  expectIssues(t, () => loadYamlFile(`${dir}/bad.yaml`, schema), ErrorCodes.CONFIG_READ, [{ line: 1, col: 1, path: '(root)', msg: 'not valid UTF-8' }]);
  expectIssues(t, () => loadYamlFile(writeConfig(dir, 'big.yaml', `name: ${'x'.repeat(100)}\n`), schema, { maxBytes: 64 }), ErrorCodes.CONFIG_READ, [
    { line: 1, col: 1, path: '(root)', msg: 'larger than the 64 bytes accepted' },
  ]);
});

t.test('ConfigError carries every issue; format() and formatConfigError print FILE:LINE:COL: PATH: MESSAGE', async (t) => {
  const dir = t.testdir();
  const file = writeConfig(dir, 'c.yaml', 'name: 1\nkms:\n  url: 2\nextra: 3\n');
  let err: unknown;
  try {
    loadYamlFile(file, schema);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError);
  const ce = err as ConfigError;
  t.equal(ce.issues.length, 3);
  t.equal(ce.name, 'ConfigError');
  t.same(ce.format().split('\n'), [
    `${file}:1:7: name: expected a string, got number 1`,
    `${file}:3:8: kms.url: expected a string, got number 2`,
    `${file}:4:1: extra: unknown field; expected one of: kms, state_dir_mode, key_file_mode, policy, peers, list, name`,
  ]);
  t.equal(formatConfigError(ce), ce.format());
  t.ok(ce.message.includes(ce.format()), 'the message holds every line too');
  t.ok(Object.isFrozen(ce.issues));
  t.equal(formatConfigError(new Error('plain')), 'plain');
});

t.test('formatPath', async (t) => {
  t.equal(formatPath([]), '(root)');
  t.equal(formatPath(['peers', 0, 'control']), 'peers[0].control');
  t.equal(formatPath(['policies', 'p-1', 'grace']), 'policies["p-1"].grace');
});

t.test('positions point at the value of a scalar and at the key of a collection', async (t) => {
  const dir = t.testdir();
  const y = load(dir, 'kms:\n  url: abc\npeers:\n  - name: x\n');
  t.same(y.position(['kms', 'url']), { line: 2, col: 8 });
  t.same(y.position(['kms']), { line: 1, col: 1 });
  t.same(y.position(['peers', 0]), { line: 4, col: 5 });
  t.same(y.position(['peers', 0, 'nothing', 'here']), { line: 4, col: 5 }, 'falls back to the nearest written ancestor');
  t.equal(y.written(['name']), false, 'a defaulted field was not written');
  t.equal(y.written(['kms', 'url']), true);
});

t.test('a device, a FIFO or a directory is refused at once, never read to the end', async (t) => {
  const { loadYamlFile: load } = await import('../../../src/config/load-yaml.js');
  const { execFileSync } = await import('node:child_process');
  const { join } = await import('node:path');
  const dir = t.testdir();
  const fifo = join(dir, 'fifo.yaml');
  execFileSync('mkfifo', [fifo]);
  for (const f of ['/dev/zero', fifo, dir]) {
    const t0 = Date.now();
    t.throws(() => load(f, { type: 'object' }), { code: 'QKDGW_E_CONFIG_READ' }, f);
    t.ok(Date.now() - t0 < 2_000, `${f}: refused quickly`);
  }
});
