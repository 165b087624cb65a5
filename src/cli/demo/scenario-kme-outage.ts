/**
 * `qkdgw demo --scenario kme-outage` (issue 4): a KME outage ridden through, once under
 * `qkd: required` and once under `qkd: preferred` (protocol.md s6), each phase in a lab
 * of its own (`qkdgw kme-sim` with its admin endpoint and two `qkdgw run` gateways, as
 * separate processes from generated YAML).
 *
 * In each phase a SHA-256-checked echo stream runs through the tunnel; right after a
 * rekey the demo pauses and drains the simulated QKD link (admin endpoint), prints each
 * step of the ladder as the gateways log it (ladder-steps.ts), gives the keys back, and
 * checks that every byte of the stream came back with no reset:
 * - `required`: no QKD key, no new epoch: handshakes fail, the epoch passes its hard limit
 *   and traffic is held; the KME comes back a few seconds into the hold, a QKD epoch is
 *   installed and the stream goes on.
 * - `preferred`: the failed QKD handshake steps down at once to degraded epochs (ML-KEM-768
 *   + X25519 only), rekeyed every `degraded_lifetime`; once keys are back, `recovery_checks`
 *   good KME status checks make the next epoch a QKD one again (`qkd_restored`).
 *
 * Ends with one line `demo: OK <bytes> bytes verified across <n> epochs (required: held
 * <x>s, resumed; preferred: <d> degraded epochs, restored)` (exit 0) or `demo: FAILED
 * <reason>` (exit 1), and leaves no process behind. Short timings keep it under a minute.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initPki, type PkiLayout } from '../../pki/index.js';
import type { LabOptions } from '../../daemon/lab.js';
import { Exit } from '../exit-codes.js';
import { KmeAdmin } from './admin-client.js';
import type { Child, LogLine } from './children.js';
import { EchoStream } from './echo-stream.js';
import { startTarget } from './http-target.js';
import { startLabProcesses, type LabProcesses } from './lab-processes.js';
import { keyIdOf, LadderWatch, lineTime, type OutagePolicy } from './ladder-steps.js';

/** Timings of both phases: short, so the whole scenario takes well under 60 s. */
const RECOVERY_CHECKS = 3;
const TIMINGS = {
  rekeyAfterTime: '2s',
  rekeyJitter: '200ms',
  hardLimitTime: '8s',
  handshakeTimeout: '2s',
  grace: '2s',
  hold: '30s',
  carrierHold: '30s',
  degradedLifetime: '2s',
  recoveryChecks: RECOVERY_CHECKS,
  retryBackoffMin: '200ms',
  retryBackoffMax: '1s',
  // No keys fetched ahead: the outage shows at the very next rekey.
  kmePool: 0,
  kmeStatusInterval: '500ms',
} satisfies Partial<LabOptions>;
/** `required`: how long the demo lets the hold last before it gives the keys back, ms. */
const HOLD_BEFORE_RESUME_MS = 3_000;
/** `preferred`: degraded epochs to see before the keys come back. */
const DEGRADED_BEFORE_RESUME = 2;
/** Keys the demo adds when it ends the outage (the link also accrues again). */
const KEYS_ON_RESUME = 20;
/** After the ladder is back on QKD, the stream runs this long more before it ends, ms. */
const STREAM_TAIL_MS = 1_000;

const MiB = 2 ** 20;
const say = (s = ''): void => void process.stdout.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface PhaseOutcome {
  /** Stream bytes sent plus bytes echoed back, all verified by SHA-256. */
  verified: number;
  /** Epochs gw-a installed in this phase's lab. */
  epochs: number;
  /** `required`: from the hard limit to the next QKD epoch, ms. */
  heldMs: number;
  /** `preferred`: degraded epochs installed. */
  degraded: number;
}

/** Everything a phase needs from the scenario around it. */
interface PhaseEnv {
  root: string;
  pki: PkiLayout;
  target: { host: string; port: number };
  /** Sees every child process as it starts (for the signal handler and the final stop). */
  started: (c: Child) => void;
  /** `--keep`: also write each process's log lines to `<root>/<phase>/<name>.log`. */
  keep: boolean;
}

/** The labels the demo prints for a policy. */
function policyLine(policy: OutagePolicy): string {
  const t = TIMINGS;
  const common = `rekey ${t.rekeyAfterTime}, hard limit ${t.hardLimitTime}, hold ${t.hold}, kme.pool ${t.kmePool}, kme.status_interval ${t.kmeStatusInterval}`;
  return policy === 'required'
    ? `qkd: required (no QKD key, no new epoch; at the hard limit traffic waits); ${common}`
    : `qkd: preferred (no QKD key: degraded epochs, ML-KEM-768 + X25519 only; back to QKD after ${t.recoveryChecks} good KME checks); degraded_lifetime ${t.degradedLifetime}, ${common}`;
}

/**
 * Polls `cond` every 50 ms until it holds, failing early when `broken()` names a problem.
 * @throws Error `no <what> within <ms/1000> s` on timeout, or the problem `broken()` names
 */
async function until<T>(cond: () => T | null | undefined | false, ms: number, what: string, broken: () => string | null): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const problem = broken();
    if (problem) throw new Error(problem);
    const v = cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`no ${what} within ${ms / 1000} s`);
    await sleep(50);
  }
}

/** Checks that gw-b installed each of gw-a's epochs with the same key_IDs and mode (the last may still be pending). */
function checkAgreement(policy: OutagePolicy, gwA: Child, gwB: Child): number {
  const a = gwA.events('epoch_switch');
  const b = new Map(gwB.events('epoch_switch').map((l) => [Number(l.epoch), l]));
  a.forEach((l, i) => {
    const m = b.get(Number(l.epoch));
    if (!m) {
      if (i === a.length - 1) return;
      throw new Error(`[${policy}] epoch ${l.epoch} was installed by gw-a but never by gw-b`);
    }
    if (keyIdOf(m) !== keyIdOf(l) || m.degraded !== l.degraded) {
      throw new Error(`[${policy}] gw-a and gw-b disagree on epoch ${l.epoch}: key_ID ${keyIdOf(l)} / ${keyIdOf(m)}, degraded ${l.degraded} / ${m.degraded}`);
    }
  });
  return a.length;
}

async function runPhase(policy: OutagePolicy, env: PhaseEnv): Promise<PhaseOutcome> {
  const tag = `  [${policy}]`;
  say(`[${policy}] ${policyLine(policy)}`);
  const dir = join(env.root, policy);
  mkdirSync(dir);
  // gw-a logs at debug: its key pool's kme_status_checked lines are the recovery checks.
  const lab: LabProcesses = await startLabProcesses({ dir, pki: env.pki, target: env.target, ...TIMINGS, qkd: policy, simAdmin: true, gatewayLogLevel: 'debug' }, env.started);
  const unsubscribe: Array<() => void> = [];
  let stream: EchoStream | null = null;
  try {
    const { sim, gwA, gwB } = lab;
    if (!lab.adminUrl) throw new Error('the simulator logged no admin URL (kme_sim_started.admin)');
    const admin = new KmeAdmin(lab.adminUrl);
    say(`${tag} lab: kme-sim (pid ${sim.proc.pid}, admin ${lab.adminUrl}), gw-b (pid ${gwB.proc.pid}), gw-a (pid ${gwA.proc.pid})`);
    await gwA.waitFor((l) => l.event === 'epoch_switch', 20_000, 'the first epoch');
    await gwB.waitFor((l) => l.event === 'epoch_switch', 20_000, 'the first epoch on gw-b');

    // The stream crosses one rekey; the KME goes dark right after it, so the current
    // epoch's hard limit is a full hard_limit_time away.
    stream = new EchoStream(lab.servicePort);
    const firstEpoch = Number(gwA.events('epoch_switch').at(-1)?.epoch ?? 0);
    const sw = await gwA.waitFor((l) => l.event === 'epoch_switch' && Number(l.epoch) > firstEpoch, 15_000, 'a rekey with the stream running');
    const t0 = Date.now();
    await admin.link({ paused: true });
    const drained = await admin.drain();
    const before = gwA.events('epoch_switch').map((l) => `${l.epoch} (${keyIdOf(l)?.slice(0, 8) ?? 'degraded'}...)`);
    say(`${tag} stream running; epochs so far with QKD keys: ${before.join(', ')}`);
    const watch = new LadderWatch(policy, t0, Number(sw.epoch), say, RECOVERY_CHECKS);
    watch.note(`KME dark (admin): link paused and drained, stored_key_count ${KmeAdmin.stored(drained)}; epoch ${sw.epoch} is current`);
    for (const [who, c] of [['gw-a', gwA], ['gw-b', gwB]] as const) {
      // Lines that arrived since t0 first, then the live ones: nothing is missed or doubled.
      for (const l of c.lines) if (lineTime(l) >= t0) watch.observe(who, l);
      unsubscribe.push(c.onLine((l) => watch.observe(who, l)));
    }
    const s = stream;
    const broken = (): string | null => {
      if (s.error) return `[${policy}] the stream failed: ${s.error.message}`;
      const bad = watch.bad[0];
      if (bad) return `[${policy}] ${bad.who} logged ${bad.line.event}: ${JSON.stringify(bad.line).slice(0, 240)}`;
      const gone = [sim, gwA, gwB].find((c) => c.exited);
      if (gone) return `[${policy}] ${gone.name} exited (${JSON.stringify(gone.exited)})`;
      return null;
    };
    const resume = async (): Promise<void> => {
      await admin.link({ paused: false });
      const st = await admin.addKeys(KEYS_ON_RESUME);
      watch.resumedAt = Date.now();
      watch.note(`KME back (admin): link resumed, ${KEYS_ON_RESUME} keys added, stored_key_count ${KmeAdmin.stored(st)}`);
    };

    let heldMs = 0;
    if (policy === 'required') {
      const hl = await until(() => watch.hardLimit, 25_000, 'epoch_hard_limit (the hold) on gw-a', broken);
      // Give in-flight records a moment, then no byte may move until a new epoch exists.
      await sleep(500);
      const backInHold = s.back;
      await sleep(Math.max(0, lineTime(hl) + HOLD_BEFORE_RESUME_MS - Date.now()));
      const problem = broken();
      if (problem) throw new Error(problem);
      const moved = s.back - backInHold;
      if (moved !== 0) throw new Error(`[required] ${moved} bytes came through while the pair had no epoch to seal under (hold)`);
      watch.note(`stream: no byte moved during the hold, connection still open`);
      await resume();
      const qkd = await until(() => watch.qkdAfterResume, 30_000, 'QKD epoch after the KME came back', broken);
      heldMs = lineTime(qkd) - lineTime(hl);
      if (watch.degradedEpochs.length) throw new Error(`[required] gw-a installed degraded epoch ${watch.degradedEpochs[0].epoch} under qkd: required`);
    } else {
      await until(() => watch.degradedEpochs.length >= DEGRADED_BEFORE_RESUME, 25_000, `${DEGRADED_BEFORE_RESUME} degraded epochs on gw-a`, broken);
      await resume();
      await until(() => watch.recoveryReady, 20_000, 'qkd_recovery_ready on gw-a', broken);
      await until(() => watch.restored, 20_000, 'qkd_restored on gw-a', broken);
      if (!watch.stepDown || !watch.degradedAlarm) throw new Error('[preferred] degraded epochs without qkd_step_down / qkd_degraded');
      if (watch.hardLimit) throw new Error(`[preferred] epoch ${watch.hardLimit.epoch} reached its hard limit: traffic was held under qkd: preferred`);
      if (keyIdOf(watch.restored!) === null) throw new Error('[preferred] qkd_restored names no key_ID');
    }
    // The stream must really move again under the new QKD epoch before it ends.
    const backThen = s.back;
    await until(() => s.back > backThen, 10_000, 'stream progress after the KME came back', broken);
    await sleep(STREAM_TAIL_MS);
    const r = await stream.finish();
    stream = null;
    if (!r.intact) throw new Error(`[${policy}] stream: sent ${r.sent} bytes (SHA-256 ${r.sha256Sent.slice(0, 16)}...), got ${r.back} back (${r.sha256Back.slice(0, 16)}...)`);
    const problem = broken();
    if (problem) throw new Error(problem);
    const epochs = checkAgreement(policy, gwA, gwB);
    say(`${tag} stream: ${(r.sent / MiB).toFixed(1)} MiB each way over ${(r.ms / 1000).toFixed(1)} s, SHA-256 verified, never reset; gw-b agrees on all ${epochs} epochs`);
    for (const f of unsubscribe.splice(0)) f();
    await lab.stop();
    for (const c of [sim, gwA, gwB]) if (c.exited && c.exited.code !== 0) throw new Error(`[${policy}] ${c.name} exited with ${JSON.stringify(c.exited)}`);
    return { verified: r.sent + r.back, epochs, heldMs, degraded: watch.degradedEpochs.length };
  } finally {
    for (const f of unsubscribe) f();
    if (stream) await stream.finish(1).catch(() => undefined);
    await lab.stop();
    if (env.keep) for (const c of [lab.sim, lab.gwA, lab.gwB]) writeFileSync(join(dir, `${c.name}.log`), c.lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  }
}

/**
 * Runs the scenario; prints its story and the verdict line; returns the exit status
 * (0 OK, 1 FAILED). `keep` keeps the work folder (its path is printed before the verdict).
 */
export async function kmeOutageDemo(opts: { keep?: boolean } = {}): Promise<number> {
  const root = mkdtempSync(join(tmpdir(), 'qkdgw-demo-'));
  const children: Child[] = [];
  let target: Awaited<ReturnType<typeof startTarget>> | null = null;
  const onSignal = (): void => {
    for (const c of children) c.proc.kill('SIGKILL');
    process.exit(Exit.FAILURE);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let verdict: string;
  let code: number;
  try {
    say('qkdgw demo --scenario kme-outage: the KME goes dark under a running stream, twice');
    say(`  work folder ${root}`);
    const pki = await initPki({ outDir: join(root, 'pki'), gateways: ['gw-a', 'gw-b'], kmes: ['KME_A', 'KME_B'] });
    target = await startTarget();
    const env: PhaseEnv = { root, pki, target: { host: '127.0.0.1', port: target.port }, started: (c) => children.push(c), keep: opts.keep === true };
    say();
    const req = await runPhase('required', env);
    say();
    const pref = await runPhase('preferred', env);
    say();
    const bytes = req.verified + pref.verified;
    verdict = `demo: OK ${bytes} bytes verified across ${req.epochs + pref.epochs} epochs (required: held ${(req.heldMs / 1000).toFixed(1)}s, resumed; preferred: ${pref.degraded} degraded epochs, restored)`;
    code = Exit.OK;
  } catch (e) {
    for (const c of [...children].reverse()) await c.stop();
    for (const c of children) {
      const tail = c.lines.filter((l: LogLine) => typeof l.level === 'number' && l.level >= 40).slice(-3);
      for (const l of tail) say(`  ${c.name}: ${JSON.stringify(l).slice(0, 300)}`);
    }
    verdict = `demo: FAILED ${(e as Error).message}`;
    code = Exit.FAILURE;
  } finally {
    for (const c of [...children].reverse()) await c.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    target?.server.closeAllConnections();
    target?.server.close();
    if (!opts.keep) rmSync(root, { recursive: true, force: true });
    else say(`  (kept ${root})`);
  }
  say(verdict);
  return code;
}
