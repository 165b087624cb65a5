/** KME simulator configuration: mapping onto the simulator's options, defaults, cross-field rules, PEM reading. */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ErrorCodes } from '../../../src/errors.js';
import { LINK_DEFAULTS, resolveKmeSimConfig } from '../../../src/kms/simulator/options.js';
import { checkSimulatorSecretFiles, loadSimulatorConfig, readSimulatorPems } from '../../../src/config/simulator.js';
import { expectIssues, writeConfig } from './helpers.js';

/** Lines: 1 kmes, 2 "- kme_id: KME_A", 3 cert, 4 key, 5 ca, 6 saes, 7 "- kme_id: KME_B", 8 cert, 9 key, 10 ca, 11 saes; appended from 12. */
const SIM = `kmes:
  - kme_id: KME_A
    cert: pki/kme-a.pem
    key: pki/kme-a.key
    ca: pki/ca.pem
    saes: [SAE_A]
  - kme_id: KME_B
    cert: pki/kme-b.pem
    key: pki/kme-b.key
    ca: pki/ca.pem
    saes: [SAE_B]
`;

function makeSimPki(dir: string, keyMode = 0o600): void {
  mkdirSync(join(dir, 'pki'), { recursive: true });
  for (const f of ['kme-a.pem', 'kme-b.pem', 'ca.pem']) writeFileSync(join(dir, 'pki', f), `-----BEGIN CERTIFICATE-----\n${f}\n-----END CERTIFICATE-----\n`);
  for (const f of ['kme-a.key', 'kme-b.key']) {
    writeFileSync(join(dir, 'pki', f), `-----BEGIN PRIVATE KEY-----\n${f}\n-----END PRIVATE KEY-----\n`);
    chmodSync(join(dir, 'pki', f), keyMode);
  }
}

t.test('minimal file: defaults equal the simulator LINK_DEFAULTS; PEMs read into KmeSimConfig', async (t) => {
  const dir = t.testdir();
  makeSimPki(dir);
  const file = writeConfig(dir, 'sim.yaml', SIM);
  const cfg = loadSimulatorConfig(file);
  t.same(cfg, {
    file,
    link: LINK_DEFAULTS,
    kmes: [
      { kmeId: 'KME_A', cert: join(dir, 'pki/kme-a.pem'), key: join(dir, 'pki/kme-a.key'), ca: join(dir, 'pki/ca.pem'), saes: ['SAE_A'] },
      { kmeId: 'KME_B', cert: join(dir, 'pki/kme-b.pem'), key: join(dir, 'pki/kme-b.key'), ca: join(dir, 'pki/ca.pem'), saes: ['SAE_B'] },
    ],
    saeIdFrom: 'cn',
    quirks: { exhaustion: '503' },
    log: { level: 'info' },
  });
  t.ok(Object.isFrozen(cfg.kmes[1].saes));
  const opts = readSimulatorPems(cfg);
  t.match(opts.kmes[0].cert, /kme-a\.pem/);
  t.match(opts.kmes[1].key, /kme-b\.key/);
  t.match(opts.kmes[0].ca, /BEGIN CERTIFICATE/);
  t.equal(opts.kmes[0].host, undefined, 'no listen: the simulator picks its default');
  const resolved = resolveKmeSimConfig(opts);
  t.same(resolved.link, LINK_DEFAULTS, "the simulator's own validation accepts the options");
  t.equal(resolved.kmes[0].port, 0);
});

t.test('full file maps snake_case onto the simulator options', async (t) => {
  const dir = t.testdir();
  makeSimPki(dir);
  const text = `link:
  key_rate_bps: 1000000
  max_key_count: 5000
  key_size_bits: 512
  min_key_size_bits: 128
  max_key_size_bits: 2048
  max_key_per_request: 10
  initial_key_count: 100
  max_pending_keys: 7
sae_id_from: san-uri
quirks:
  exhaustion: 400
${SIM.replace('  - kme_id: KME_A\n', '  - kme_id: KME_A\n    listen: 127.0.0.1:8443\n').replace('  - kme_id: KME_B\n', '  - kme_id: KME_B\n    listen: "[::1]:8444"\n')}`;
  const cfg = loadSimulatorConfig(writeConfig(dir, 'sim.yaml', text));
  t.same(cfg.link, { keyRateBps: 1_000_000, maxKeyCount: 5000, keySizeBits: 512, minKeySizeBits: 128, maxKeySizeBits: 2048, maxKeyPerRequest: 10, initialKeyCount: 100, maxPendingKeys: 7 });
  t.equal(cfg.saeIdFrom, 'san-uri');
  t.equal(cfg.quirks.exhaustion, '400', 'a bare 400 becomes the string mode');
  t.equal(cfg.kmes[0].host, '127.0.0.1');
  t.equal(cfg.kmes[0].port, 8443);
  t.equal(cfg.kmes[1].host, '::1');
  const opts = readSimulatorPems(cfg);
  t.same({ host: opts.kmes[1].host, port: opts.kmes[1].port }, { host: '::1', port: 8444 });
  t.same(resolveKmeSimConfig(opts).link, cfg.link);
});

const table: Array<[string, string, Parameters<typeof expectIssues>[3]]> = [
  ['one KME only', SIM.split('  - kme_id: KME_B')[0], [{ line: 1, col: 1, path: 'kmes', msg: 'exactly two KMEs with at least 2 item(s)' }]],
  ['same KME ID twice', SIM.replace('kme_id: KME_B', 'kme_id: KME_A'), [{ line: 7, col: 13, path: 'kmes[1].kme_id', msg: 'the two KMEs need different IDs' }]],
  ['an SAE on both KMEs', SIM.replace('saes: [SAE_B]', 'saes: [SAE_B, SAE_A]'), [{ line: 11, col: 19, path: 'kmes[1].saes[1]', msg: 'SAE SAE_A is attached to both KMEs' }]],
  ['key size not a multiple of 8', 'link:\n  key_size_bits: 250\n' + SIM, [{ line: 2, col: 18, path: 'link.key_size_bits', msg: 'multiple of 8' }]],
  ['key size outside min..max', 'link:\n  key_size_bits: 2048\n' + SIM, [{ line: 2, col: 18, path: 'link.key_size_bits', msg: 'must lie between min_key_size_bits (64) and max_key_size_bits (1024)' }]],
  ['initial count above the pool', 'link:\n  initial_key_count: 1001\n' + SIM, [{ line: 2, col: 22, path: 'link.initial_key_count', msg: 'must not exceed max_key_count (1000)' }]],
  ['BC-33 key rate in exponent notation', 'link:\n  key_rate_bps: 1e6\n' + SIM, [{ line: 2, col: 17, path: 'link.key_rate_bps', msg: 'float or exponent notation' }]],
  ['unknown field', 'link:\n  key_rate: 5\n' + SIM, [{ line: 2, col: 3, path: 'link.key_rate', msg: 'did you mean key_rate_bps?' }]],
  ['bad sae_id_from', 'sae_id_from: serial\n' + SIM, [{ line: 1, col: 14, path: 'sae_id_from', msg: 'expected one of "cn" | "san-uri"' }]],
  ['listen collision', SIM.replace('  - kme_id: KME_A\n', '  - kme_id: KME_A\n    listen: 127.0.0.1:8443\n').replace('  - kme_id: KME_B\n', '  - kme_id: KME_B\n    listen: 127.0.0.1:8443\n'), [
    { line: 9, col: 13, path: 'kmes[1].listen', msg: 'collides with kmes[0].listen' },
  ]],
  ['bad listen', SIM.replace('  - kme_id: KME_A\n', '  - kme_id: KME_A\n    listen: 127.0.0.1:70000\n'), [{ line: 3, col: 13, path: 'kmes[0].listen', msg: 'out of range' }]],
];
for (const [name, text, expected] of table) {
  t.test(`simulator error table: ${name}`, async (t) => {
    const dir = t.testdir();
    expectIssues(t, () => loadSimulatorConfig(writeConfig(dir, 'sim.yaml', text), { checkFiles: false }), ErrorCodes.CONFIG_INVALID, expected);
  });
}

t.test('simulator key files: existence and mode', async (t) => {
  const dir = t.testdir();
  makeSimPki(dir, 0o644);
  const file = writeConfig(dir, 'sim.yaml', SIM);
  t.throws(() => loadSimulatorConfig(file), { code: ErrorCodes.FILE_PERMISSIONS, message: /kmes\[0\]\.key: private key .*mode 0644.*chmod 600/ });
  const cfg = loadSimulatorConfig(file, { checkFiles: false });
  chmodSync(join(dir, 'pki/kme-a.key'), 0o600);
  chmodSync(join(dir, 'pki/kme-b.key'), 0o600);
  t.doesNotThrow(() => checkSimulatorSecretFiles(cfg));
  writeFileSync(join(dir, 'pki/ca.pem'), 'not a pem');
  t.throws(() => readSimulatorPems(cfg), { code: ErrorCodes.CONFIG_READ, message: /kmes\[0\]\.ca: .* holds no PEM block/ });
  const missing = loadSimulatorConfig(writeConfig(dir, 'sim2.yaml', SIM.replace('pki/kme-b.pem', 'pki/nope.pem')), { checkFiles: false });
  writeFileSync(join(dir, 'pki/ca.pem'), '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
  t.throws(() => readSimulatorPems(missing), { code: ErrorCodes.CONFIG_READ, message: /kmes\[1\]\.cert: cannot read .*nope\.pem \(ENOENT\)/ });
  expectIssues(t, () => loadSimulatorConfig(join(dir, 'sim2.yaml')), ErrorCodes.CONFIG_INVALID, [{ line: 8, col: 11, path: 'kmes[1].cert', msg: 'file not found' }]);
});
