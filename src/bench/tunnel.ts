/**
 * `npm run bench` (node dist/bench/tunnel.js): throughput of one TCP flow through the
 * qkdgw tunnel (gw-a -> gw-b on 127.0.0.1) against the same flow on a direct TCP
 * connection to the same target, upload and download, in one run.
 *
 * The lab is the demo's: a temporary PKI, the KME simulator pair and both gateways as
 * separate `qkdgw` processes. The client and the target (a plain `net` sink/source)
 * run in this process. MB/s is 10^6 bytes per second from the first to the last byte
 * at the receiving end. Ends with `bench: tunnel/direct upload = X.XX, download = Y.YY`
 * (exit 0), or `bench: FAILED <reason>` on stderr (exit 1; 64 for a bad command line).
 * Leaves no process behind on any path, SIGINT/SIGTERM included.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { suiteInfo } from '../crypto/suites.js';
import type { Child } from '../cli/demo/children.js';
import { parseBenchArgs, UsageError, USAGE, type BenchOptions } from './options.js';
import { startBenchTarget, type BenchTarget } from './target.js';
import { startBenchLab, tail, type BenchLab } from './lab.js';
import { runFlow, type Direction, type FlowBounds } from './flows.js';
import { finalLine, ratio, table, type PathName, type Row } from './report.js';

const MiB = 2 ** 20;
/** Unreported warm-up per path and direction: JIT, socket buffers, the first carrier. */
const WARMUP: FlowBounds = { maxBytes: 16 * MiB, maxMs: 2_000 };

const say = (s = ''): void => void process.stdout.write(`${s}\n`);

/** Every spawned lab process, so each exit path can stop it. */
const children: Child[] = [];
let workDir: string | null = null;
let keepDir = false;

function killAllNow(): void {
  for (const c of children) if (!c.exited) c.proc.kill('SIGKILL');
}

function removeWorkDir(): void {
  if (workDir && !keepDir) rmSync(workDir, { recursive: true, force: true });
  workDir = null;
}

function lastEpoch(c: Child): number {
  return Number(c.events('epoch_switch').at(-1)?.epoch ?? 0);
}

async function bench(o: BenchOptions): Promise<void> {
  const nCpu = cpus().length;
  say('qkdgw bench: one TCP flow through the tunnel (gw-a -> gw-b, 127.0.0.1) vs the same flow direct');
  say(`  node ${process.version}, CPU ${cpus()[0]?.model?.trim() ?? 'unknown'} (${nCpu} logical cores), load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  workDir = mkdtempSync(join(tmpdir(), 'qkdgw-bench-'));
  keepDir = o.keep;
  const target: BenchTarget = await startBenchTarget();
  let lab: BenchLab | null = null;
  try {
    lab = await startBenchLab({
      dir: workDir,
      targetPort: target.port,
      rekeyAfterTime: o.rekey,
      rekeyJitter: o.rekeyJitter,
      hardLimitTime: o.hardLimit,
      track: (c) => children.push(c),
    });
    const first = lab.gwA.events('epoch_switch')[0];
    const suite = suiteInfo(Number(first?.suite ?? 1));
    const backend = String(lab.gwA.events('crypto_backend')[0]?.backend ?? 'unknown');
    const aead = suite.id === 1 ? `AES-256-GCM on the ${backend} backend` : `XChaCha20-Poly1305 (@stablelib)`;
    say(`  AEAD: ${aead} (suite ${suite.id} ${suite.name}; gateway crypto backend "${backend}")`);
    say(`  lab: kme-sim pid ${lab.sim.proc.pid}, gw-b pid ${lab.gwB.proc.pid}, gw-a pid ${lab.gwA.proc.pid} (service on 127.0.0.1:${lab.servicePort}); target 127.0.0.1:${target.port} in this process`);
    say(`  rekey_after_time ${o.rekey} (rekey_jitter ${o.rekeyJitter}, hard_limit_time ${o.hardLimit})`);
    say(`  each flow: ${o.boundText}; MB/s = 10^6 bytes/s, first to last byte at the receiver; byte counts checked at both ends`);
    say(`  note: ${nCpu} cores shared by this process (client + target), gw-a, gw-b and kme-sim; a tunnel flow keeps 3 processes busy, a direct one 1`);
    say();

    const port = (p: PathName): number => (p === 'direct' ? target.port : lab!.servicePort);
    const bounds: FlowBounds = { maxBytes: o.bytes, maxMs: o.sendMs };
    for (const d of ['upload', 'download'] as Direction[]) {
      for (const p of ['direct', 'tunnel'] as PathName[]) await runFlow(`warm-up ${p}`, d, port(p), target, WARMUP, lab.abort);
    }
    const epochBefore = lastEpoch(lab.gwA);
    const switchesBefore = lab.gwA.events('epoch_switch').length;
    const rows: Row[] = [];
    for (const d of ['upload', 'download'] as Direction[]) {
      for (const p of ['direct', 'tunnel'] as PathName[]) {
        const from = lastEpoch(lab.gwA);
        const result = await runFlow(p, d, port(p), target, bounds, lab.abort);
        rows.push({ path: p, result, epochs: p === 'tunnel' ? { from, to: lastEpoch(lab.gwA) } : undefined });
      }
    }
    const rekeys = lab.gwA.events('epoch_switch').length - switchesBefore;
    const epochAfter = lastEpoch(lab.gwA);

    await lab.stop();
    for (const c of children) if (c.exited && c.exited.code !== 0) throw new Error(`${c.name} exited with ${JSON.stringify(c.exited)} when stopped${tail(c)}`);

    for (const l of table(rows)) say(l);
    say();
    say(`ratio tunnel/direct: upload ${ratio(rows, 'upload').toFixed(2)}, download ${ratio(rows, 'download').toFixed(2)}`);
    if (rekeys === 0) {
      say(`rekeys during the measured flows: none (epoch ${epochBefore} throughout): rekey_after_time ${o.rekey} is longer than this run, so these figures carry no rekey cost; pass --rekey 2s to include it`);
    } else {
      say(`rekeys during the measured flows: ${rekeys} (gw-a epoch ${epochBefore} -> ${epochAfter}, rekey_after_time ${o.rekey})`);
    }
    say(finalLine(rows));
  } finally {
    await lab?.stop();
    // Whatever was spawned before a failed start, or survived stop().
    for (const c of [...children].reverse()) await c.stop();
    await target.close();
  }
}

async function main(argv: string[]): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseBenchArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`bench: ${e.message}\n${USAGE}\n`);
    return 64;
  }
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`bench: FAILED interrupted by ${sig}; stopping the lab processes\n`);
    killAllNow();
    removeWorkDir();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('SIGHUP', onSignal);
  try {
    await bench(o);
    return 0;
  } catch (e) {
    process.stderr.write(`bench: FAILED ${(e as Error).message}\n`);
    return 1;
  } finally {
    if (o.keep && workDir) say(`  (kept ${workDir})`);
    removeWorkDir();
  }
}

// Last resort for paths that skip main's cleanup (an exception thrown from a socket
// callback): no lab process may outlive the bench.
process.once('exit', () => {
  killAllNow();
  removeWorkDir();
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: FAILED ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
