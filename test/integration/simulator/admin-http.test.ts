// etsi014-S37 the admin HTTP endpoint (loopback only), its YAML/CLI configuration and `qkdgw kme-sim ctl`.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { request as httpRequest } from 'node:http';
import { ErrorCodes } from '../../../src/errors.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { loadSimulatorConfig } from '../../../src/config/simulator.js';
import { isConfigError } from '../../../src/config/issues.js';
import {
  isLoopbackHost,
  resolveKmeSimConfig,
  startKmeSimAdmin,
  startKmeSimulator,
  QUIRK_DEFAULTS,
} from '../../../src/kms/simulator/index.js';
import { kmeSimCtl, KmeSimUsageError, parseKmeSimArgs, startKmeSimFromArgs } from '../../../src/cli/kme-sim.js';
import { startHarness, type Harness } from './harness.js';
import type { TestPki } from '../../helpers/pki.js';

interface AdminResp {
  status: number;
  headers: Headers;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function admin(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<AdminResp> {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const r = await fetch(`${base}${path}`, {
    method,
    body: text,
    headers: { ...(text !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
  });
  const raw = await r.text();
  return { status: r.status, headers: r.headers, json: raw.length > 0 ? JSON.parse(raw) : undefined };
}

async function withAdmin(t: { teardown(fn: () => unknown): void }, h: Harness): Promise<string> {
  const a = await startKmeSimAdmin(h.sim.control, { port: 0 });
  t.teardown(() => a.close());
  return a.url;
}

t.test('etsi014-S37 admin routes map 1:1 onto the control API, each visible to an ETSI 014 client', async (t) => {
  const h = await startHarness(t, { link: { keyRateBps: 10_000, initialKeyCount: 5 } });
  const url = await withAdmin(t, h);
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.not(new URL(url).port, String(h.sim.kmes[0].port));

  const st = await admin(url, 'GET', '/admin/state');
  t.equal(st.status, 200);
  t.equal(st.headers.get('content-type'), 'application/json');
  t.same(st.json, h.sim.control.state(), 'GET /admin/state = control.state()');

  let r = await admin(url, 'POST', '/admin/link', { paused: true, maxKeyCount: 8 });
  t.equal(r.status, 200);
  t.match(r.json.link, { paused: true, maxKeyCount: 8 }, 'the answer is the new state');
  h.clock.advance(1000);
  t.equal((await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status')).json.stored_key_count, 5, 'paused over HTTP');

  r = await admin(url, 'POST', '/admin/faults', { kme: 'KME_A', status503: 1 });
  t.equal(r.json.faults.KME_A.status503, 1);
  t.equal((await h.encKeys('gw-a', 'gw-b')).status, 503, 'injected 503 over HTTP');

  r = await admin(url, 'POST', '/admin/quirks', { unknownId404: true });
  t.equal(r.json.quirks.unknownId404, true);
  t.equal((await h.call(1, 'gw-b', 'GET', '/keys/gw-a/dec_keys?key_ID=nope')).status, 404, 'quirk over HTTP');

  r = await admin(url, 'POST', '/admin/drain');
  t.equal(r.status, 200, 'an empty body is {}');
  t.equal(r.json.stored['KME_A->KME_B'], 0);
  r = await admin(url, 'POST', '/admin/add_keys', { count: 2 });
  t.equal(r.json.stored['KME_A->KME_B'], 2);
  t.equal((await h.encKeys('gw-a', 'gw-b', { number: 2 })).status, 200, 'the added keys are delivered');
  r = await admin(url, 'POST', '/admin/drain', { pending: true });
  t.same(r.json.pending, { 'KME_A->KME_B': 0, 'KME_B->KME_A': 0 });

  r = await admin(url, 'POST', '/admin/reset', { keys: true });
  t.equal(r.status, 200);
  t.same(r.json.quirks, QUIRK_DEFAULTS);
  t.match(r.json.link, { paused: false, maxKeyCount: 1000, keyRateBps: 10_000 });
  t.equal(r.json.stored['KME_A->KME_B'], 5);
  t.same(r.json.requests, { KME_A: {}, KME_B: {} });
  t.same(
    h.logger.lines.filter((l) => l.event === 'kme_sim_admin').map((l) => l.action),
    ['set_link', 'set_faults', 'set_quirks', 'drain', 'add_keys', 'drain', 'reset'],
  );
});

t.test('etsi014-S37 admin bodies are validated strictly: 400 names the member and nothing changes', async (t) => {
  const h = await startHarness(t);
  const url = await withAdmin(t, h);
  const before = h.sim.control.state();
  const cases: Array<[string, string, unknown, number, RegExp]> = [
    ['POST', '/admin/faults', { latency_ms: 5 }, 400, /faults\.latency_ms: unknown member \(did you mean latencyMs\?\)/],
    ['POST', '/admin/faults', { latencyMs: '5' }, 400, /faults\.latencyMs: must be an integer/],
    ['POST', '/admin/faults', { kme: 'KME_Z' }, 400, /faults\.kme/],
    ['POST', '/admin/link', { paused: 'yes' }, 400, /link\.paused: must be true or false/],
    ['POST', '/admin/link', { keyRateBps: 1, extra: true }, 400, /link\.extra: unknown member/],
    ['POST', '/admin/quirks', { exhaustion: 'sometimes' }, 400, /quirks\.exhaustion/],
    ['POST', '/admin/quirks', { htmlErrors: 1 }, 400, /quirks\.htmlErrors: must be true or false/],
    ['POST', '/admin/reset', { keys: 'all' }, 400, /reset\.keys/],
    ['POST', '/admin/drain', { everything: true }, 400, /drain\.everything: unknown member/],
    ['POST', '/admin/add_keys', {}, 400, /addKeys\.count: is required/],
    ['POST', '/admin/add_keys', { count: 1.5 }, 400, /addKeys\.count/],
    ['POST', '/admin/add_keys', { n: 1 }, 400, /add_keys\.n: unknown member/],
    ['POST', '/admin/faults', '{"latencyMs": ', 400, /not valid JSON/],
    ['POST', '/admin/faults', '[1,2]', 400, /shall be a JSON object/],
    ['POST', '/admin/faults', 'null', 400, /shall be a JSON object/],
    ['POST', '/admin/faults', '{"status503": 0, "latencyMs": 5, "status503": 3}', 400, /member "status503" appears twice/],
    ['GET', '/admin/nope', undefined, 404, /no such admin resource "\/admin\/nope"; routes: \/admin\/state/],
    ['GET', '/api/v1/keys/gw-b/status', undefined, 404, /no such admin resource/],
    ['GET', '/admin/faults', undefined, 405, /use POST/],
    ['POST', '/admin/state', {}, 405, /use GET/],
  ];
  for (const [method, path, body, status, re] of cases) {
    const r = await admin(url, method, path, body);
    t.equal(r.status, status, `${method} ${path} ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    t.match(r.json?.message, re);
  }
  t.equal((await admin(url, 'GET', '/admin/faults')).headers.get('allow'), 'POST');
  const form = await admin(url, 'POST', '/admin/faults', 'latencyMs=5', { 'content-type': 'application/x-www-form-urlencoded' });
  t.equal(form.status, 415, 'a non-JSON content type is refused');
  const web = await admin(url, 'POST', '/admin/reset', {}, { origin: 'http://evil.example' });
  t.equal(web.status, 403, 'a request from a web page (Origin header) is refused');
  // DNS rebinding: the page's own name in Host (fetch cannot set Host, so node:http does).
  const rebound = await new Promise<number>((resolve, reject) => {
    const u = new URL(`${url}/admin/state`);
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, headers: { host: `evil.example:${u.port}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(rebound, 403, 'a Host that is not loopback is refused (DNS rebinding)');
  const big = await admin(url, 'POST', '/admin/faults', JSON.stringify({ kme: 'x'.repeat(70 * 1024) }));
  t.equal(big.status, 413);
  t.same(h.sim.control.state(), before, 'no refused request changed anything');
});

t.test('etsi014-S37 the admin endpoint binds loopback only', async (t) => {
  for (const host of ['127.0.0.1', '127.8.9.10', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) {
    t.ok(isLoopbackHost(host), `${host} is loopback`);
  }
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', 'fe80::1%eth0', 'example.com', '::2']) {
    t.notOk(isLoopbackHost(host), `${host} is not loopback`);
  }
  const h = await startHarness(t);
  await t.rejects(startKmeSimAdmin(h.sim.control, { host: '0.0.0.0' }), { code: ErrorCodes.KMS_CONFIG, message: /"0\.0\.0\.0" is not a loopback address/ });
  const ep = (kmeId: string, saes: string[]) => ({ kmeId, cert: 'C', key: 'K', ca: 'A', saes });
  t.throws(() => resolveKmeSimConfig({ kmes: [ep('A', ['a']), ep('B', ['b'])], admin: { host: '192.168.1.10', port: 0 } }), {
    code: ErrorCodes.KMS_CONFIG,
    message: /admin\.host: must be a loopback address/,
  });
  t.throws(() => resolveKmeSimConfig({ kmes: [ep('A', ['a']), ep('B', ['b'])], admin: { listen: '127.0.0.1:0' } }), { message: /admin\.listen: unknown option/ });
  t.match(resolveKmeSimConfig({ kmes: [ep('A', ['a']), ep('B', ['b'])], admin: {} }).admin, { host: '127.0.0.1', port: 0 });
  t.equal(resolveKmeSimConfig({ kmes: [ep('A', ['a']), ep('B', ['b'])] }).admin, null, 'no admin unless asked');
  t.equal(h.sim.admin, null);
});

t.test('etsi014-S37 startKmeSimulator({admin}) reports the bound port, logs it, and close() stops it', async (t) => {
  const h = await startHarness(t);
  const logger = new MemoryLogger();
  const kmes = [
    { kmeId: 'KME_A', cert: h.pki.kmes.KME_A.cert, key: h.pki.kmes.KME_A.key, ca: h.pki.qkdCa.cert, saes: ['gw-a'] },
    { kmeId: 'KME_B', cert: h.pki.kmes.KME_B.cert, key: h.pki.kmes.KME_B.key, ca: h.pki.qkdCa.cert, saes: ['gw-b'] },
  ] as const;
  const sim = await startKmeSimulator({ kmes: [kmes[0], kmes[1]], admin: { port: 0 }, faults: { kme: 'KME_B', latencyMs: 3 }, logger });
  t.teardown(() => sim.close());
  t.ok(sim.admin && sim.admin.port > 0, 'a real port');
  t.equal(sim.admin?.host, '127.0.0.1');
  t.equal(sim.admin?.url, `http://127.0.0.1:${sim.admin?.port}`);
  t.match(logger.lines.find((l) => l.event === 'kme_sim_admin_listening'), { url: sim.admin?.url });
  const st = await admin(sim.admin!.url, 'GET', '/admin/state');
  t.same(st.json.faults, { KME_A: { latencyMs: 0, stallMidBody: false, status503: 0, mismatchNext: 0 }, KME_B: { latencyMs: 3, stallMidBody: false, status503: 0, mismatchNext: 0 } }, 'startup faults');
  await sim.close();
  await t.rejects(fetch(`${sim.admin!.url}/admin/state`), 'closed with the simulator');
  // A busy admin port fails the whole start and leaves nothing listening.
  const blocker = http.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => blocker.close(r)));
  const port = (blocker.address() as { port: number }).port;
  await t.rejects(startKmeSimulator({ kmes: [kmes[0], kmes[1]], admin: { port } }), { code: ErrorCodes.LISTEN });
});

function writeSimYaml(pki: TestPki, name: string, extra: string): string {
  const file = join(pki.dir, name);
  writeFileSync(
    file,
    `${extra}
kmes:
  - kme_id: KME_A
    listen: 127.0.0.1:0
    cert: ${pki.kmes.KME_A.certPath}
    key: ${pki.kmes.KME_A.keyPath}
    ca: ${pki.qkdCa.certPath}
    saes: [gw-a]
  - kme_id: KME_B
    listen: 127.0.0.1:0
    cert: ${pki.kmes.KME_B.certPath}
    key: ${pki.kmes.KME_B.keyPath}
    ca: ${pki.qkdCa.certPath}
    saes: [gw-b]
`,
  );
  return file;
}

t.test('etsi014-S37 YAML: admin.listen must be loopback; quirks, faults and link.paused map onto the options', async (t) => {
  const h = await startHarness(t);
  for (const [listen, re] of [
    ['0.0.0.0:0', /must listen on a loopback address .* got 0\.0\.0\.0:0/],
    ['192.168.1.5:8450', /loopback/],
    ['"[::]:8450"', /loopback/],
    ['127.0.0.1:99999', /out of range/],
  ] as const) {
    const file = writeSimYaml(h.pki, 'bad.yaml', `admin:\n  listen: ${listen}\n`);
    try {
      loadSimulatorConfig(file);
      t.fail(`${listen} accepted`);
    } catch (e) {
      t.ok(isConfigError(e), 'a ConfigError (exit 78)');
      if (isConfigError(e)) t.match(e.issues, [{ path: 'admin.listen', line: 2, message: re }], listen);
    }
  }
  const file = writeSimYaml(
    h.pki,
    'good.yaml',
    `admin:\n  listen: 127.0.0.1:0\nlink:\n  paused: true\nquirks:\n  exhaustion: partial-200\n  unknown_id_404: true\n  html_errors: false\nfaults:\n  latency_ms: 2\n`,
  );
  const cfg = loadSimulatorConfig(file);
  t.same(cfg.admin, { host: '127.0.0.1', port: 0 });
  t.same(cfg.quirks, { exhaustion: 'partial-200', unknownId404: true, htmlErrors: false });
  t.same(cfg.faults, { latencyMs: 2 });
  t.equal(cfg.link.paused, true);
  const typo = writeSimYaml(h.pki, 'typo.yaml', `quirks:\n  unknown_id_40: true\n`);
  t.throws(() => loadSimulatorConfig(typo), { code: ErrorCodes.CONFIG_INVALID, message: /quirks\.unknown_id_40/ });
});

t.test('etsi014-S37 qkdgw kme-sim flags: --admin --key-rate --max-keys --paused --quirk --latency', async (t) => {
  const h = await startHarness(t);
  const file = writeSimYaml(h.pki, 'sim.yaml', 'link:\n  initial_key_count: 50\n');
  const logger = new MemoryLogger();
  const { sim } = await startKmeSimFromArgs(
    ['--config', file, '--admin', '127.0.0.1:0', '--key-rate', '0', '--max-keys', '20', '--paused', '--quirk', 'html_errors', '--quirk', 'unknown-id-404', '--quirk', 'decKeysNonConsuming', '--quirk', 'exhaustion=400', '--latency', '4'],
    { logger },
  );
  t.teardown(() => sim.close());
  const started = logger.lines.find((l) => l.event === 'kme_sim_started');
  t.match(started, { admin: sim.admin?.url, kmes: [{ kme: 'KME_A' }, { kme: 'KME_B' }] }, 'the startup line reports the admin URL');
  const st = (await admin(sim.admin!.url, 'GET', '/admin/state')).json;
  t.same(st.link, { keyRateBps: 0, maxKeyCount: 20, paused: true, keySizeBits: 256 });
  t.equal(st.stored['KME_A->KME_B'], 20, 'initial_key_count is capped by --max-keys');
  t.same(st.quirks, { ...QUIRK_DEFAULTS, exhaustion: '400', unknownId404: true, decKeysNonConsuming: true, htmlErrors: true });
  t.equal(st.faults.KME_A.latencyMs, 4);
  t.equal(st.faults.KME_B.latencyMs, 4);
  // The flags are the startup configuration: reset returns to them.
  sim.control.setQuirks({ htmlErrors: false });
  t.equal(sim.control.reset().quirks.htmlErrors, true);

  const bad: Array<[string[], RegExp]> = [
    [['--admin', '0.0.0.0:0'], /--admin 0\.0\.0\.0:0: .*loopback/],
    [['--admin', 'nope'], /--admin: expected host:port/],
    [['--key-rate', '10k'], /--key-rate: expected an integer/],
    [['--max-keys=-1'], /--max-keys: expected an integer/],
    [['--latency', '600001'], /--latency: expected an integer from 0 to 600000/],
    [['--quirk', 'fast'], /--quirk fast: unknown quirk; known: unknownId404/],
    [['--quirk', 'exhaustion=500'], /--quirk exhaustion=500/],
    [['--quirk', 'exhaustion'], /unknown quirk/],
    [[], /--config FILE is required/],
  ];
  for (const [args, re] of bad) {
    const argv = args.length === 0 ? [] : ['--config', file, ...args];
    t.throws(() => parseKmeSimArgs(argv), re, args.join(' '));
    try {
      parseKmeSimArgs(argv);
    } catch (e) {
      t.ok(e instanceof KmeSimUsageError, 'a usage error (exit 64)');
    }
  }
  t.same(parseKmeSimArgs(['--config', file]).flags, {}, 'no flags: the file alone');
});

t.test('etsi014-S37 qkdgw kme-sim ctl drives the admin endpoint', async (t) => {
  const h = await startHarness(t);
  const url = await withAdmin(t, h);
  const run = async (...argv: string[]) => {
    let out = '';
    let err = '';
    const code = await kmeSimCtl(argv, { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  };
  let r = await run('--admin', url, 'faults', '--json', '{"kme":"KME_B","status503":"always"}');
  t.equal(r.code, 0);
  t.equal(JSON.parse(r.out).faults.KME_B.status503, 'always', 'prints the new state');
  t.equal((await h.call(1, 'gw-b', 'GET', '/keys/gw-a/status')).status, 503, 'and the KME obeys');
  r = await run('state', '--admin', new URL(url).host);
  t.equal(r.code, 0, 'a bare host:port works, flags in any order');
  t.same(JSON.parse(r.out), h.sim.control.state());
  r = await run('--admin', url, 'link', '--json', '{"paused":true}');
  t.equal(JSON.parse(r.out).link.paused, true);
  r = await run('--admin', url, 'reset');
  t.equal(r.code, 0, 'no --json: empty body');
  t.equal(JSON.parse(r.out).faults.KME_B.status503, 0);

  r = await run('--admin', url, 'quirks', '--json', '{"html_errors":true}');
  t.equal(r.code, 1, 'refused by the endpoint: exit 1');
  t.match(r.err, /quirks: HTTP 400: quirks\.html_errors: unknown member \(did you mean htmlErrors\?\)/);
  t.equal(r.out, '');
  r = await run('--admin', url, 'faults', '--json', '{bad');
  t.equal(r.code, 64, 'bad --json: usage');
  t.match(r.err, /--json is not valid JSON/);
  r = await run('--admin', url, 'explode');
  t.equal(r.code, 64);
  t.match(r.err, /unknown command "explode"/);
  r = await run('faults');
  t.equal(r.code, 64);
  t.match(r.err, /--admin URL is required/);
  r = await run('--admin', 'https://127.0.0.1:1', 'state');
  t.equal(r.code, 64, 'https is refused');
  // A port nobody listens on: bind one, learn it, close it.
  const s = http.createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  const deadPort = (s.address() as { port: number }).port;
  await new Promise((res) => s.close(res));
  r = await run('--admin', `http://127.0.0.1:${deadPort}`, 'state');
  t.equal(r.code, 1, 'unreachable: exit 1');
  t.match(r.err, /cannot reach http:\/\/127\.0\.0\.1:\d+\/admin\/state/);
});
