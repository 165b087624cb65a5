/**
 * Gateway configuration: defaults (protocol.md s6), normalisation, the error table
 * (schema, units, cross-field rules, protocol.md s6 refusal rules) and key file modes.
 */
import { chmodSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';
import { checkSecretFiles, defaultPolicy, loadGatewayConfig } from '../../../src/config/gateway.js';
import { isInitiator } from '../../../src/config/gateway-rules.js';
import { formatConfigError } from '../../../src/config/issues.js';
import { BASE, expectIssues, makePki, writeConfig, type ExpectedIssue } from './helpers.js';

const S6_DEFAULT = {
  suites: [1],
  qkd: 'required',
  degradedLifetimeMs: 60_000,
  recoveryChecks: 3,
  forecastAlarmMs: 600_000,
  rekeyAfterTimeMs: 120_000,
  rekeyJitterMs: 10_000,
  rekeyAfterRecords: 2 ** 24,
  rekeyAfterBytes: 64 * 2 ** 30,
  hardLimitTimeMs: 180_000,
  hardLimitRecords: 2 ** 25,
  handshakeTimeoutMs: 5_000,
  retryBackoffMinMs: 500,
  retryBackoffMaxMs: 30_000,
  graceMs: 10_000,
  holdMs: 120_000,
  carrierHoldMs: 300_000,
  maxFlowsPerEpoch: 2 ** 20,
  keepaliveMs: 10_000,
  deadAfterMs: 30_000,
};

t.test('happy path: minimal file, every default filled in, paths absolute, deeply frozen', async (t) => {
  const dir = t.testdir();
  makePki(dir);
  const file = writeConfig(dir, 'gw.yaml', BASE);
  const cfg = loadGatewayConfig(file, { checkCertificates: false });
  t.same(cfg, {
    file,
    identity: 'SAE_A',
    kme: {
      url: 'https://kme-a.test:8443/api/v1',
      ca: join(dir, 'pki/ca.pem'),
      cert: join(dir, 'pki/sae.pem'),
      key: join(dir, 'pki/sae.key'),
      timeoutMs: 5_000,
      pool: 3,
      statusIntervalMs: 10_000,
      compat: { decKeysPathSae: 'master' },
    },
    control: { ca: join(dir, 'pki/control-ca.pem'), cert: join(dir, 'pki/gw.pem'), key: join(dir, 'pki/gw.key') },
    data: { maxNewConnectionsPerSource: 100 },
    peers: [{ identity: 'SAE_B', control: { host: '127.0.0.1', port: 7443 }, policy: 'default' }],
    services: [],
    exports: [],
    policies: { default: S6_DEFAULT },
    crypto: { backend: 'auto' },
    log: { level: 'info' },
    startup: { readyWaitMs: 30000 },
    shutdown: { drainTimeoutMs: 20000 },
  });
  t.same(defaultPolicy(), S6_DEFAULT, 'defaultPolicy() is protocol.md s6 with suites [1]');
  t.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.kme.compat) && Object.isFrozen(cfg.peers[0].control) && Object.isFrozen(cfg.policies.default.suites));
  t.throws(() => {
    (cfg.policies.default as { holdMs: number }).holdMs = 1;
  }, TypeError);
});

t.test('full file: every field read and normalised; a policy fills its gaps from the defaults', async (t) => {
  const dir = t.testdir();
  const text = `identity: SAE_M
kme:
  url: https://kme.test/api/v1/
  ca: /abs/ca.pem
  cert: pki/sae.pem
  key: pki/sae.key
  timeout: 1500ms
  server_name: kme.internal
  spki_sha256: sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
  pool: 0
  status_interval: 1m
  compat:
    dec_keys_path_sae: self
control:
  listen: "[::]:7443"
  cert: pki/gw.pem
  key: pki/gw.key
data:
  listen: 0.0.0.0:0
  max_new_connections_per_source: 5
peers:
  - identity: SAE_A
    data: 10.0.0.1:7444
    pin: sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
    policy: demo
  - identity: SAE_Z
    control: "[2001:db8::2]:7443"
    pin: sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=
services:
  - name: erp
    listen: 127.0.0.1:0
    peer: SAE_A
exports:
  - name: db
    target: db.internal:5432
    peers: [SAE_A, SAE_Z]
policies:
  demo:
    suites: [2, 1]
    qkd: preferred
    rekey_after_time: 2s
    rekey_jitter: 500ms
    hard_limit_time: 20s
    handshake_timeout: 2s
    grace: 5s
    rekey_after_bytes: 512KiB
crypto:
  backend: noble
log:
  level: debug
metrics:
  listen: 127.0.0.1:9464
admin:
  socket: /run/qkdgw/admin.sock
audit:
  file: /var/lib/qkdgw/audit.jsonl
`;
  const cfg = loadGatewayConfig(writeConfig(dir, 'full.yaml', text), { checkFiles: false });
  t.equal(cfg.kme.url, 'https://kme.test/api/v1', 'trailing slash removed');
  t.equal(cfg.kme.ca, '/abs/ca.pem', 'absolute paths stay');
  t.equal(cfg.kme.timeoutMs, 1500);
  t.equal(cfg.kme.serverName, 'kme.internal');
  t.equal(cfg.kme.spkiSha256, 'sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  t.equal(cfg.kme.pool, 0);
  t.equal(cfg.kme.statusIntervalMs, 60_000);
  t.equal(cfg.kme.compat.decKeysPathSae, 'self');
  t.same(cfg.control.listen, { host: '::', port: 7443 });
  t.equal(cfg.control.ca, undefined);
  t.same(cfg.data, { listen: { host: '0.0.0.0', port: 0 }, maxNewConnectionsPerSource: 5 });
  t.same(cfg.peers[0], { identity: 'SAE_A', data: { host: '10.0.0.1', port: 7444 }, policy: 'demo', pin: 'sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' });
  t.same(cfg.peers[1].control, { host: '2001:db8::2', port: 7443 });
  t.same(cfg.services, [{ name: 'erp', listen: { host: '127.0.0.1', port: 0 }, peer: 'SAE_A' }]);
  t.same(cfg.exports, [{ name: 'db', target: { host: 'db.internal', port: 5432 }, peers: ['SAE_A', 'SAE_Z'] }]);
  t.same(cfg.policies.demo, {
    ...S6_DEFAULT,
    suites: [2, 1],
    qkd: 'preferred',
    rekeyAfterTimeMs: 2_000,
    rekeyJitterMs: 500,
    hardLimitTimeMs: 20_000,
    handshakeTimeoutMs: 2_000,
    graceMs: 5_000,
    rekeyAfterBytes: 512 * 1024,
  }, 'short rekey intervals (demo: 2s, hard limit 20s) are accepted');
  t.same(cfg.policies.default, S6_DEFAULT, "'default' exists although the file defines only 'demo'");
  t.equal(cfg.crypto.backend, 'noble');
  t.equal(cfg.log.level, 'debug');
  t.same(cfg.metrics, { listen: { host: '127.0.0.1', port: 9464 } });
  t.same(cfg.admin, { socket: '/run/qkdgw/admin.sock' });
  t.same(cfg.audit, { file: '/var/lib/qkdgw/audit.jsonl' });
});

t.test('protocol.md s1: the initiator is the byte-wise smaller identity; a proper prefix is smaller', async (t) => {
  t.equal(isInitiator('SAE_A', 'SAE_B'), true);
  t.equal(isInitiator('SAE_B', 'SAE_A'), false);
  t.equal(isInitiator('SAE', 'SAE_A'), true);
  t.equal(isInitiator('SAE_A', 'SAE'), false);
  t.equal(isInitiator('Z', 'a'), true, 'byte order, not locale order');
  t.equal(isInitiator('A', 'A'), false);
});

/** Replaces `from` in BASE (which must occur) with `to`. */
const edit = (from: string, to: string): string => {
  if (!BASE.includes(from)) throw new Error(`fixture: ${from} not in BASE`);
  return BASE.replace(from, to);
};
const PEER_B = '  - identity: SAE_B\n    control: 127.0.0.1:7443\n';

const table: Array<[string, string, ExpectedIssue[]]> = [
  // --- schema and units ---
  ['unknown top-level field', BASE + 'kme_url: x\n', [{ line: 14, col: 1, path: 'kme_url', msg: 'unknown field' }]],
  ['misspelt field gets a suggestion', edit('  key: pki/sae.key\n', '  key: pki/sae.key\n  timout: 5s\n'), [{ line: 7, col: 3, path: 'kme.timout', msg: 'did you mean timeout?' }]],
  ['wrong type: identity as a number', edit('identity: SAE_A', 'identity: 12'), [{ line: 1, col: 11, path: 'identity', msg: 'expected an SAE ID: 1..64 characters of A-Z a-z 0-9 . _ -, got number 12' }]],
  ['identity too long', edit('identity: SAE_A', `identity: ${'A'.repeat(65)}`), [{ line: 1, col: 11, path: 'identity', msg: 'expected an SAE ID' }]],
  ['missing required section', edit(PEER_B, '  []\n').replace('control:\n  ca: pki/control-ca.pem\n  cert: pki/gw.pem\n  key: pki/gw.key\n', ''), [
    { line: 1, col: 1, path: 'control', msg: 'missing required field' },
    { line: 7, col: 1, path: 'peers', msg: 'with at least 1 item(s)' },
  ]],
  ['enum', BASE + 'crypto:\n  backend: openssl\n', [{ line: 15, col: 12, path: 'crypto.backend', msg: 'expected one of "auto" | "native" | "node" | "noble", got "openssl"' }]],
  ['duration without unit (120)', BASE + 'policies:\n  default:\n    rekey_after_time: 120\n', [{ line: 16, col: 23, path: 'policies.default.rekey_after_time', msg: 'expected a duration with a unit (ms, s, m, h, d), e.g. 120s, 5m or 500ms, got number 120' }]],
  ['duration "5 parsecs"', BASE + 'policies:\n  default:\n    hold: 5 parsecs\n', [{ line: 16, col: 11, path: 'policies.default.hold', msg: 'got "5 parsecs"' }]],
  ['duration 0 where a timer must run', edit('  key: pki/sae.key\n', '  key: pki/sae.key\n  timeout: 0s\n'), [{ line: 7, col: 12, path: 'kme.timeout', msg: 'greater than 0' }]],
  ['duration beyond setTimeout range', edit('  key: pki/sae.key\n', '  key: pki/sae.key\n  status_interval: 30d\n'), [{ line: 7, col: 20, path: 'kme.status_interval', msg: 'longer than the maximum' }]],
  ['policy timer of 0s', BASE + 'policies:\n  default:\n    handshake_timeout: 0s\n', [{ line: 16, col: 24, path: 'policies.default.handshake_timeout', msg: 'greater than 0' }]],
  ['size of 0B for a rekey trigger', BASE + 'policies:\n  default:\n    rekey_after_bytes: 0B\n', [{ line: 16, col: 24, path: 'policies.default.rekey_after_bytes', msg: 'greater than 0' }]],
  ['decimal size unit', BASE + 'policies:\n  default:\n    rekey_after_bytes: 64GB\n', [{ line: 16, col: 24, path: 'policies.default.rekey_after_bytes', msg: 'binary unit' }]],
  ['BC-33 count in exponent notation (1e9)', BASE + 'policies:\n  default:\n    rekey_after_records: 1e9\n', [{ line: 16, col: 26, path: 'policies.default.rekey_after_records', msg: 'float or exponent notation' }]],
  ['BC-33 20-digit count', BASE + 'policies:\n  default:\n    hard_limit_records: 18446744073709543423\n', [{ line: 16, col: 25, path: 'policies.default.hard_limit_records', msg: 'out of range' }]],
  ['drain_timeout of a day', BASE + 'shutdown:\n  drain_timeout: 1d\n', [{ line: 15, col: 18, path: 'shutdown.drain_timeout', msg: 'at most 1h' }]],
  ['ready_wait of a day', BASE + 'startup:\n  ready_wait: 1d\n', [{ line: 15, col: 15, path: 'startup.ready_wait', msg: 'at most 1h' }]],
  ['admin.socket too long to bind', BASE + `admin:\n  socket: /run/${'x'.repeat(120)}.sock\n`, [{ line: 15, col: 11, path: 'admin.socket', msg: 'at most 107 bytes' }]],
  ['BC-33 a number where text is expected says what YAML made of it', edit('identity: SAE_A', 'identity: 0x1F'), [{ line: 1, col: 11, path: 'identity', msg: 'got 0x1F, which YAML reads as the number 31 (quote it: "0x1F")' }]],
  ['BC-33 hex in a count', BASE + 'data:\n  max_new_connections_per_source: 0x10\n', [{ line: 15, col: 35, path: 'data.max_new_connections_per_source', msg: 'plain decimal digits, got 0x10 (write 16)' }]],
  ['BC-33 leading zero in a count', BASE + 'data:\n  max_new_connections_per_source: 0600\n', [{ line: 15, col: 35, path: 'data.max_new_connections_per_source', msg: 'number 0600 has a leading zero, which YAML 1.2 reads as decimal 600; write 600' }]],
  ['suites: duplicate and unknown', BASE + 'policies:\n  default:\n    suites: [1, 1, 3]\n', [
    { line: 16, col: 17, path: 'policies.default.suites[1]', msg: 'duplicate item number 1' },
    { line: 16, col: 20, path: 'policies.default.suites[2]', msg: 'expected one of 1 | 2, got number 3' },
  ]],
  ['suites: empty', BASE + 'policies:\n  default:\n    suites: []\n', [{ line: 16, col: 5, path: 'policies.default.suites', msg: 'at least 1' }]],
  ['bad policy name', BASE + 'policies:\n  "has space": {}\n', [{ line: 15, col: 3, path: 'policies["has space"]', msg: 'invalid name "has space"' }]],
  ['host:port without port', edit('127.0.0.1:7443', 'gw-b'), [{ line: 13, col: 14, path: 'peers[0].control', msg: 'expected host:port' }]],
  ['host:port port out of range', edit('127.0.0.1:7443', '127.0.0.1:99999'), [{ line: 13, col: 14, path: 'peers[0].control', msg: 'port 99999 is out of range 0..65535' }]],
  ['host:port port 0 for a connect target', edit('127.0.0.1:7443', '127.0.0.1:0'), [{ line: 13, col: 14, path: 'peers[0].control', msg: 'only accepted for a listen address' }]],
  ['host:port unspecified connect target', edit('127.0.0.1:7443', '0.0.0.0:7443'), [{ line: 13, col: 14, path: 'peers[0].control', msg: 'unspecified address' }]],
  ['kme url not https', edit('https://kme-a.test:8443/api/v1', 'http://kme-a.test:8443/api/v1'), [{ line: 3, col: 8, path: 'kme.url', msg: 'https' }]],
  ['kme url with credentials', edit('https://kme-a.test:8443/api/v1', 'https://u:p@kme-a.test/api/v1'), [{ line: 3, col: 8, path: 'kme.url', msg: 'credentials in the URL are not accepted' }]],
  ['pin of the wrong length', edit('    control: 127.0.0.1:7443\n', '    control: 127.0.0.1:7443\n    pin: sha256:AAAA\n'), [{ line: 14, col: 10, path: 'peers[0].pin', msg: 'expected an SPKI pin' }]],
  ['pin not canonical base64', edit('    control: 127.0.0.1:7443\n', '    control: 127.0.0.1:7443\n    pin: sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n'), [{ line: 14, col: 10, path: 'peers[0].pin', msg: 'canonical base64 of 32 bytes' }]],

  // --- cross-field rules ---
  ['peer identity equals our own', edit('  - identity: SAE_B', '  - identity: SAE_A'), [{ line: 12, col: 15, path: 'peers[0].identity', msg: "equals this gateway's own identity" }]],
  ['duplicate peer identity', BASE + PEER_B, [{ line: 14, col: 15, path: 'peers[1].identity', msg: 'duplicate peer identity SAE_B (also peers[0])' }]],
  ['we are the initiator and the peer has no control address', edit('    control: 127.0.0.1:7443\n', '    policy: default\n'), [{ line: 12, col: 5, path: 'peers[0].control', msg: 'this gateway (SAE_A) is the initiator towards SAE_B' }]],
  ['a peer is our initiator and control.listen is missing', BASE + '  - identity: SAE_0\n', [{ line: 7, col: 1, path: 'control.listen', msg: 'SAE_0 is the initiator towards this gateway (SAE_A)' }]],
  ['a proper prefix is the initiator: SAE is ours', BASE + '  - identity: SAE\n', [{ line: 7, col: 1, path: 'control.listen', msg: 'SAE is the initiator' }]],
  ['a service uses a peer without a data address', BASE + 'services:\n  - name: erp\n    listen: 127.0.0.1:15432\n    peer: SAE_B\n', [{ line: 12, col: 5, path: 'peers[0].data', msg: 'a service tunnels to SAE_B' }]],
  ['service peer does not exist', BASE + 'services:\n  - name: erp\n    listen: 127.0.0.1:15432\n    peer: SAE_X\n', [{ line: 17, col: 11, path: 'services[0].peer', msg: 'unknown peer SAE_X' }]],
  ['duplicate service name and listen address', edit('    control: 127.0.0.1:7443\n', '    control: 127.0.0.1:7443\n    data: 127.0.0.1:7444\n') + 'services:\n  - name: erp\n    listen: 127.0.0.1:15432\n    peer: SAE_B\n  - name: erp\n    listen: 127.0.0.1:15432\n    peer: SAE_B\n', [
    { line: 19, col: 11, path: 'services[1].name', msg: 'duplicate service name erp (also services[0])' },
    { line: 20, col: 13, path: 'services[1].listen', msg: 'collides with services[0].listen (127.0.0.1:15432)' },
  ]],
  ['a wildcard listen collides with a specific one on the same port', edit('control:\n', 'control:\n  listen: 0.0.0.0:7443\n') + 'metrics:\n  listen: 127.0.0.1:7443\n', [{ line: 16, col: 11, path: 'metrics.listen', msg: 'collides with control.listen (0.0.0.0:7443)' }]],
  ['peer policy does not exist', edit('    control: 127.0.0.1:7443\n', '    control: 127.0.0.1:7443\n    policy: strict\n'), [{ line: 14, col: 13, path: 'peers[0].policy', msg: 'unknown policy "strict"; defined: default' }]],
  ['export names an unknown peer; data.listen missing', BASE + 'exports:\n  - name: db\n    target: db.internal:5432\n    peers: [SAE_B, SAE_Q]\n', [
    { line: 1, col: 1, path: 'data.listen', msg: 'exports are defined' },
    { line: 17, col: 20, path: 'exports[0].peers[1]', msg: 'unknown peer SAE_Q' },
  ]],
  ['duplicate export name', BASE + 'data:\n  listen: 0.0.0.0:7444\nexports:\n  - name: db\n    target: db:1\n    peers: [SAE_B]\n  - name: db\n    target: db:2\n    peers: [SAE_B]\n', [{ line: 20, col: 11, path: 'exports[1].name', msg: 'duplicate export name db' }]],
  ['no control.ca and no pin', edit('  ca: pki/control-ca.pem\n', ''), [{ line: 11, col: 5, path: 'peers[0].pin', msg: 'without control.ca each peer needs a pin' }]],

  // --- protocol.md s6 refusal rules ---
  ['s6: rekey + jitter + 2 x handshake timeout must be < hard limit', BASE + 'policies:\n  default:\n    rekey_after_time: 170s\n', [
    { line: 16, col: 23, path: 'policies.default.rekey_after_time', msg: 'rekey_after_time (170s) + rekey_jitter (10s) + 2 x handshake_timeout (5s) = 190s must be less than hard_limit_time (180s)' },
  ]],
  ['s6: the bound is strict (equal is refused)', BASE + 'policies:\n  default:\n    rekey_after_time: 2s\n    rekey_jitter: 0s\n    handshake_timeout: 4s\n    hard_limit_time: 10s\n    grace: 5s\n', [
    { line: 19, col: 22, path: 'policies.default.hard_limit_time', msg: '= 10s must be less than hard_limit_time (10s)' },
  ]],
  ['s6: grace must be < hard limit time', BASE + 'policies:\n  default:\n    grace: 180s\n', [{ line: 16, col: 12, path: 'policies.default.grace', msg: 'grace (180s) must be less than hard_limit_time (180s)' }]],
  ['s6: hold must be <= carrier_hold', BASE + 'policies:\n  default:\n    carrier_hold: 60s\n', [{ line: 16, col: 19, path: 'policies.default.carrier_hold', msg: 'hold (120s) must not exceed carrier_hold (60s)' }]],
  ['s6: rekey_after_records must be < hard_limit_records', BASE + 'policies:\n  default:\n    hard_limit_records: 16777216\n', [{ line: 16, col: 25, path: 'policies.default.hard_limit_records', msg: 'rekey_after_records (16777216) must be less than hard_limit_records (16777216)' }]],
  ['s2: keepalive must be < dead_after', BASE + 'policies:\n  default:\n    keepalive: 30s\n', [{ line: 16, col: 16, path: 'policies.default.keepalive', msg: 'keepalive (30s) must be less than dead_after (30s)' }]],
];

for (const [name, text, expected] of table) {
  t.test(`config error table: ${name}`, async (t) => {
    const dir = t.testdir();
    expectIssues(t, () => loadGatewayConfig(writeConfig(dir, 'gw.yaml', text), { checkFiles: false }), ErrorCodes.CONFIG_INVALID, expected);
  });
}

t.test('all issues of one file come back together, sorted by position', async (t) => {
  const dir = t.testdir();
  const text = edit('identity: SAE_A', 'identity: 12') + 'log:\n  level: loud\nbogus: 1\n';
  expectIssues(t, () => loadGatewayConfig(writeConfig(dir, 'gw.yaml', text), { checkFiles: false }), ErrorCodes.CONFIG_INVALID, [
    { line: 1, col: 11, path: 'identity', msg: 'expected an SAE ID' },
    { line: 15, col: 10, path: 'log.level', msg: 'got "loud"' },
    { line: 16, col: 1, path: 'bogus', msg: 'unknown field' },
  ]);
});

t.test('referenced files must exist (checkFiles)', async (t) => {
  const dir = t.testdir();
  makePki(dir);
  rmSync(join(dir, 'pki/sae.pem'));
  rmSync(join(dir, 'pki/gw.key'));
  expectIssues(t, () => loadGatewayConfig(writeConfig(dir, 'gw.yaml', BASE), { checkCertificates: false }), ErrorCodes.CONFIG_INVALID, [
    { line: 5, col: 9, path: 'kme.cert', msg: `file not found: ${join(dir, 'pki/sae.pem')}` },
    { line: 10, col: 8, path: 'control.key', msg: 'file not found' },
  ]);
});

t.test('private key files open to group or others are refused with the chmod to run', async (t) => {
  const dir = t.testdir();
  makePki(dir, 0o644);
  const file = writeConfig(dir, 'gw.yaml', BASE);
  let err: unknown;
  try {
    loadGatewayConfig(file, { checkCertificates: false });
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof QkdgwError);
  t.equal((err as QkdgwError).code, ErrorCodes.FILE_PERMISSIONS);
  const msg = (err as QkdgwError).message;
  t.match(msg, `kme.key: private key ${join(dir, 'pki/sae.key')} is accessible by group or others (mode 0644); run: chmod 600 '${join(dir, 'pki/sae.key')}'`);
  t.match(msg, `control.key: private key ${join(dir, 'pki/gw.key')}`);
  t.match(formatConfigError(err), /gw\.yaml:6:8: kme\.key: private key .* \(mode 0644\)/, 'located: file:line:col and the field');
  // Reported together with the other problems of a well-formed file (schema errors come
  // first, alone: nothing else can be checked in a file of the wrong shape).
  const both = writeConfig(dir, 'both.yaml', `${BASE}policies:\n  default:\n    hold: 400s\n`);
  expectIssues(t, () => loadGatewayConfig(both, { checkCertificates: false }), ErrorCodes.CONFIG_INVALID, [
    { line: 6, col: 8, path: 'kme.key', msg: 'mode 0644' },
    { line: 10, col: 8, path: 'control.key', msg: 'mode 0644' },
    { line: 16, col: 11, path: 'policies.default.hold', msg: 'carrier_hold' },
  ]);

  chmodSync(join(dir, 'pki/sae.key'), 0o640);
  chmodSync(join(dir, 'pki/gw.key'), 0o600);
  t.throws(() => loadGatewayConfig(file, { checkCertificates: false }), { code: ErrorCodes.FILE_PERMISSIONS, message: /mode 0640/ }, 'group-readable is refused too');
  chmodSync(join(dir, 'pki/sae.key'), 0o400);
  t.equal(loadGatewayConfig(file, { checkCertificates: false }).identity, 'SAE_A', '0400 and 0600 are accepted');

  const cfg = loadGatewayConfig(file, { checkFiles: false });
  chmodSync(join(dir, 'pki/gw.key'), 0o604);
  t.throws(() => checkSecretFiles(cfg), { code: ErrorCodes.FILE_PERMISSIONS, message: /control\.key: .*mode 0604/ }, 'checkSecretFiles on its own (reload)');
  rmSync(join(dir, 'pki/gw.key'));
  t.throws(() => checkSecretFiles(cfg), { code: ErrorCodes.CONFIG_READ, message: /control\.key: file not found/ });
  t.equal(loadGatewayConfig(file, { checkFiles: false }).identity, 'SAE_A', 'checkFiles: false skips file checks');
});

t.test('audit.file is checked with the other files: missing folder, symbolic link, group-writable file', async (t) => {
  const dir = t.testdir();
  makePki(dir);
  const at = (p: string): string => writeConfig(dir, 'gw.yaml', `${BASE}audit:\n  file: ${p}\n`);
  const lineCol = { line: BASE.split('\n').length + 1, col: 9 };
  expectIssues(t, () => loadGatewayConfig(at('nofolder/audit.jsonl'), { checkCertificates: false }), ErrorCodes.CONFIG_INVALID, [{ ...lineCol, path: 'audit.file', msg: `the folder ${join(dir, 'nofolder')} does not exist` }]);
  writeFileSync(join(dir, 'real.jsonl'), '');
  chmodSync(join(dir, 'real.jsonl'), 0o600);
  symlinkSync(join(dir, 'real.jsonl'), join(dir, 'link.jsonl'));
  expectIssues(t, () => loadGatewayConfig(at('link.jsonl'), { checkCertificates: false }), ErrorCodes.CONFIG_INVALID, [{ ...lineCol, path: 'audit.file', msg: 'is a symbolic link' }]);
  chmodSync(join(dir, 'real.jsonl'), 0o620);
  expectIssues(t, () => loadGatewayConfig(at('real.jsonl'), { checkCertificates: false }), ErrorCodes.CONFIG_INVALID, [{ ...lineCol, path: 'audit.file', msg: 'writable by group or others (mode 0620)' }]);
  chmodSync(join(dir, 'real.jsonl'), 0o600);
  t.equal(loadGatewayConfig(at('real.jsonl'), { checkCertificates: false }).audit?.file, join(dir, 'real.jsonl'), 'a 0600 file is fine');
  t.equal(loadGatewayConfig(at('new.jsonl'), { checkCertificates: false }).audit?.file, join(dir, 'new.jsonl'), 'a file not there yet is fine (created at start)');
});

t.test('BC-35c a file truncated to zero bytes (reload) is refused and the running config is untouched', async (t) => {
  const dir = t.testdir();
  const file = writeConfig(dir, 'gw.yaml', BASE);
  const running = loadGatewayConfig(file, { checkFiles: false });
  writeConfig(dir, 'gw.yaml', '');
  expectIssues(t, () => loadGatewayConfig(file, { checkFiles: false }), ErrorCodes.CONFIG_EMPTY, [{ line: 1, col: 1, path: '(root)', msg: 'configuration is empty' }]);
  t.equal(running.identity, 'SAE_A');
  t.equal(running.peers[0].identity, 'SAE_B');
});
