/**
 * `qkdgw demo`: the whole system on 127.0.0.1 with no QKD hardware. It makes a
 * temporary PKI, starts the KME simulator pair and two gateways as separate `qkdgw`
 * processes from generated YAML, and an HTTP server behind gateway B; then, through
 * gateway A: (a) 20 HTTP requests, (b) 64 MiB up and 64 MiB down checked by SHA-256,
 * (c) a stream kept running across at least 3 rekeys. It reports the AEAD backend the
 * gateways chose and the suite of their epochs (from their logs), throughput and every
 * epoch with its key_ID as seen by the simulator and by both gateways, and ends with
 * one line `demo: OK <bytes> bytes verified across <n> epochs` (exit 0) or
 * `demo: FAILED <reason>` (exit 1). It leaves no process behind.
 *
 * Options: `--keep` keeps the work folder; `--bytes SIZE` (e.g. `1MiB`; default 64MiB,
 * at most 256MiB) sets the size of (b) each way, for quick runs such as the tests.
 * `--scenario NAME` picks what to show: `basic` (the default: all of the above) or
 * `kme-outage` (issue 4: a KME outage ridden through under `qkd: required` and under
 * `qkd: preferred`; see demo/scenario-kme-outage.ts). An unknown name exits 64.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initPki } from '../pki/index.js';
import { Child, type LogLine } from './demo/children.js';
import { renderStatus } from './status-table.js';
import { requestStatus } from './status.js';
import { startLabProcesses } from './demo/lab-processes.js';
import { startTarget } from './demo/http-target.js';
import { demoAead, formatDemoAead } from './demo/backend-line.js';
import { parseSize } from '../config/units.js';
import { Exit } from './exit-codes.js';
import { kmeOutageDemo } from './demo/scenario-kme-outage.js';

/** `--scenario` values; the first is the default. */
export const DEMO_SCENARIOS = ['basic', 'kme-outage'] as const;

const MiB = 2 ** 20;
const BULK_BYTES = 64 * MiB;
/** The HTTP target serves downloads up to this size. */
const MAX_BULK_BYTES = 256 * MiB;
const REKEY_INTERVAL = '2s';
const REKEYS_DURING_STREAM = 3;

const say = (s = ''): void => void process.stdout.write(`${s}\n`);

function httpCall(port: number, method: string, path: string, body?: Buffer | ((req: import('node:http').ClientRequest) => void)): Promise<{ res: IncomingMessage; data: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ res, data: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (typeof body === 'function') body(req);
    else req.end(body);
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const mbps = (bytes: number, ms: number): string => `${(bytes / MiB / (ms / 1000)).toFixed(1)} MiB/s`;
const size = (bytes: number): string => (bytes % MiB === 0 ? `${bytes / MiB} MiB` : bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`);

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { keep: { type: 'boolean' }, bytes: { type: 'string' }, scenario: { type: 'string' } }, strict: true });
  const scenario = values.scenario ?? DEMO_SCENARIOS[0];
  if (!(DEMO_SCENARIOS as readonly string[]).includes(scenario)) {
    process.stderr.write(`qkdgw demo: --scenario wants one of ${DEMO_SCENARIOS.join(', ')}; got ${JSON.stringify(scenario)}\n`);
    return Exit.USAGE;
  }
  if (scenario === 'kme-outage') {
    if (values.bytes !== undefined) {
      process.stderr.write('qkdgw demo: --bytes applies to the basic scenario only\n');
      return Exit.USAGE;
    }
    return kmeOutageDemo({ keep: values.keep });
  }
  let bulkBytes = BULK_BYTES;
  if (values.bytes !== undefined) {
    const p = parseSize(values.bytes);
    if (p.error !== undefined || p.value < 1 || p.value > MAX_BULK_BYTES) {
      process.stderr.write(`qkdgw demo: --bytes wants a size with a binary unit from 1B to 256MiB, such as 1MiB; got ${JSON.stringify(values.bytes)}\n`);
      return Exit.USAGE;
    }
    bulkBytes = p.value;
  }
  const dir = mkdtempSync(join(tmpdir(), 'qkdgw-demo-'));
  const children: Child[] = [];
  let target: Awaited<ReturnType<typeof startTarget>> | null = null;
  let verified = 0;
  const onSignal = (): void => {
    for (const c of children) c.proc.kill('SIGKILL');
    process.exit(Exit.FAILURE);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    say('qkdgw demo: two gateways, one simulated QKD link, everything on 127.0.0.1');
    say(`  work folder ${dir}`);
    const pki = await initPki({ outDir: join(dir, 'pki'), gateways: ['gw-a', 'gw-b'], kmes: ['KME_A', 'KME_B'] });
    say('  PKI: QKD-network CA (KMEs, SAEs) and gateway-control CA (control channel)');
    target = await startTarget();
    const adminA = join(dir, 'gw-a.sock');
    const lab = await startLabProcesses({ dir, pki, target: { host: '127.0.0.1', port: target.port }, rekeyAfterTime: REKEY_INTERVAL, rekeyJitter: '500ms', hardLimitTime: '30s', adminSockets: { 'gw-a': adminA } }, (c) => children.push(c));
    const { sim, gwA, gwB, servicePort: service } = lab;
    say(`  started: kme-sim (pid ${sim.proc.pid}), gw-b (pid ${gwB.proc.pid}, exit side), gw-a (pid ${gwA.proc.pid}, entry side, service on 127.0.0.1:${service})`);
    await gwA.waitFor((l) => l.event === 'epoch_switch', 20_000, 'the first epoch');
    await gwB.waitFor((l) => l.event === 'epoch_switch', 20_000, 'the first epoch on B');
    say('  first epoch established (QKD key + ML-KEM-768 + X25519)');
    say(formatDemoAead(demoAead({ 'gw-a': gwA.lines, 'gw-b': gwB.lines })));
    say();

    // (a) 20 HTTP requests, one carrier each.
    let t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      const { res, data } = await httpCall(service, 'GET', `/hello?i=${i}`);
      const want = `hello ${i} from behind gateway B\n`;
      if (res.statusCode !== 200 || data.toString() !== want) throw new Error(`request ${i}: got ${res.statusCode} ${JSON.stringify(data.toString().slice(0, 80))}`);
      verified += data.length;
    }
    say(`(a) 20 HTTP requests through the tunnel: all answered correctly (${Date.now() - t0} ms)`);

    // (b) 64 MiB up, 64 MiB down (or --bytes).
    const up = randomBytes(bulkBytes);
    t0 = Date.now();
    const u = await httpCall(service, 'POST', '/upload', up);
    const upMs = Date.now() - t0;
    const ur = JSON.parse(u.data.toString()) as { bytes: number; sha256: string };
    if (ur.bytes !== bulkBytes || ur.sha256 !== sha(up)) throw new Error(`upload: server saw ${ur.bytes} bytes with SHA-256 ${ur.sha256.slice(0, 16)}..., sent ${bulkBytes} with ${sha(up).slice(0, 16)}...`);
    verified += bulkBytes;
    t0 = Date.now();
    const d = await httpCall(service, 'GET', `/download?bytes=${bulkBytes}`);
    const downMs = Date.now() - t0;
    if (d.data.length !== bulkBytes || sha(d.data) !== d.res.headers['x-sha256']) throw new Error(`download: got ${d.data.length} bytes, SHA-256 mismatch`);
    verified += bulkBytes;
    say(`(b) ${size(bulkBytes)} upload ${mbps(bulkBytes, upMs)}, ${size(bulkBytes)} download ${mbps(bulkBytes, downMs)}: SHA-256 verified both ways`);

    // (c) a stream across at least 3 rekeys.
    const startEpoch = Number(gwA.events('epoch_switch').at(-1)?.epoch ?? 0);
    const sent = createHash('sha256');
    const back = createHash('sha256');
    let sentBytes = 0;
    let backBytes = 0;
    t0 = Date.now();
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: service, method: 'POST', path: '/echo', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.on('data', (c: Buffer) => {
          back.update(c);
          backBytes += c.length;
        });
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', reject);
      const deadline = Date.now() + 60_000;
      const pump = (): void => {
        const cur = Number(gwA.events('epoch_switch').at(-1)?.epoch ?? 0);
        if (cur >= startEpoch + REKEYS_DURING_STREAM) {
          req.end();
          return;
        }
        if (Date.now() > deadline) {
          req.destroy(new Error(`only ${cur - startEpoch} rekeys in 60 s`));
          return;
        }
        const chunk = randomBytes(64 * 1024);
        sent.update(chunk);
        sentBytes += chunk.length;
        if (req.write(chunk)) setTimeout(pump, 20);
        else req.once('drain', () => setTimeout(pump, 20));
      };
      pump();
    });
    const streamMs = Date.now() - t0;
    const endEpoch = Number(gwA.events('epoch_switch').at(-1)?.epoch ?? 0);
    if (backBytes !== sentBytes || sent.digest('hex') !== back.digest('hex')) throw new Error(`stream: sent ${sentBytes} bytes, got ${backBytes} back, or SHA-256 differs`);
    verified += sentBytes + backBytes;
    say(`(c) one stream of ${(sentBytes / MiB).toFixed(1)} MiB each way over ${(streamMs / 1000).toFixed(1)} s across epochs ${startEpoch} -> ${endEpoch}: echo verified by SHA-256`);
    say();

    // What each side saw.
    const epochsA = gwA.events('epoch_switch');
    const epochsB = new Map(gwB.events('epoch_switch').map((l) => [Number(l.epoch), l]));
    const enc = new Map(sim.events('kme_delivery').filter((l) => l.side === 'enc').flatMap((l) => idsOf(l).map((id) => [id, l] as const)));
    const dec = new Map(sim.events('kme_delivery').filter((l) => l.side === 'dec').flatMap((l) => idsOf(l).map((id) => [id, l] as const)));
    say('epoch  key_ID (gw-a)                          gw-b agrees  simulator: enc_keys to / dec_keys to');
    for (const l of epochsA) {
      const id = String((l.key_IDs as string[])[0] ?? '(degraded)');
      const b = epochsB.get(Number(l.epoch));
      const bAgrees = b ? (b.key_IDs as string[])[0] === id : false;
      const e = enc.get(id);
      const dd = dec.get(id);
      say(`${String(l.epoch).padStart(5)}  ${id.padEnd(38)} ${(bAgrees ? 'yes' : 'not yet').padEnd(12)} ${e ? `${e.master_SAE_ID}@${e.kme}` : '-'} / ${dd ? `${dd.slave_SAE_ID}@${dd.kme}` : '-'}`);
      if (!e || !dd) throw new Error(`epoch ${l.epoch}: key_ID ${id} not seen on both sides of the simulator`);
      if (b && !bAgrees) throw new Error(`epoch ${l.epoch}: gateways disagree on its key_ID`);
    }
    const n = epochsA.length;
    if (endEpoch - startEpoch < REKEYS_DURING_STREAM) throw new Error(`only ${endEpoch - startEpoch} rekeys during the stream`);
    say();
    say(`$ qkdgw status --socket ${adminA}`);
    say(renderStatus(await requestStatus(adminA)).trimEnd());
    await stopAll(children);
    for (const c of children) if (c.exited && c.exited.code !== 0) throw new Error(`${c.name} exited with ${JSON.stringify(c.exited)}`);
    say();
    say(`demo: OK ${verified} bytes verified across ${n} epochs`);
    return Exit.OK;
  } catch (e) {
    await stopAll(children);
    for (const c of children) {
      const tail = c.lines.filter((l) => (l as LogLine & { level?: number }).level !== undefined && Number((l as { level?: number }).level) >= 40).slice(-3);
      for (const l of tail) say(`  ${c.name}: ${JSON.stringify(l).slice(0, 300)}`);
    }
    say(`demo: FAILED ${(e as Error).message}`);
    return Exit.FAILURE;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    target?.server.closeAllConnections();
    target?.server.close();
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
    else say(`  (kept ${dir})`);
  }
}

function idsOf(l: LogLine): string[] {
  const v = l.key_IDs ?? l.key_ID;
  return Array.isArray(v) ? v.map(String) : v ? [String(v)] : [];
}

async function stopAll(children: Child[]): Promise<void> {
  // Stop the entry side first so no new carriers start while the rest goes down.
  for (const c of [...children].reverse()) await c.stop();
}
