/**
 * The benchmark's lab, made exactly as `qkdgw demo` makes it: a temporary PKI, the KME
 * simulator pair and two gateways as separate `qkdgw` processes from the YAML of
 * `startLabProcesses`, gateway B exporting service `web` to the bench target.
 */
import { join } from 'node:path';
import { initPki } from '../pki/index.js';
import { type Child, type LogLine } from '../cli/demo/children.js';
import { startLabProcesses } from '../cli/demo/lab-processes.js';

export interface BenchLabOptions {
  /** Work folder (PKI and YAML go inside). */
  dir: string;
  targetPort: number;
  /** Policy texts for the YAML (`120s`, `10000ms` ...). */
  rekeyAfterTime: string;
  rekeyJitter: string;
  hardLimitTime: string;
  /** Receives every child as soon as it is spawned, so the caller can kill it on any path. */
  track: (c: Child) => void;
}

export interface BenchLab {
  sim: Child;
  gwA: Child;
  gwB: Child;
  /** gw-a's service port: connections here are tunnelled to gw-b and on to the target. */
  servicePort: number;
  /**
   * Rejects as soon as any lab process exits before `stop()`; the caller races it with
   * each flow so a crashed gateway fails the run at once instead of stalling it.
   */
  abort: Promise<never>;
  /** Stops the entry side first, then gw-b, then the simulator; SIGKILL after 5 s each. */
  stop(): Promise<void>;
}

const START_MS = 30_000;

/**
 * Starts the lab and waits for the first epoch on both gateways.
 * @throws Error when a process exits or misses its start event within 30 s (the
 *   message carries the tail of its stderr).
 */
export async function startBenchLab(o: BenchLabOptions): Promise<BenchLab> {
  const pki = await initPki({ outDir: join(o.dir, 'pki'), gateways: ['gw-a', 'gw-b'], kmes: ['KME_A', 'KME_B'] });
  let stopping = false;
  let fail: (e: Error) => void = () => undefined;
  const abort = new Promise<never>((_, reject) => {
    fail = reject;
  });
  // Nobody may be racing it when a child dies between flows; the next race still sees it.
  abort.catch(() => undefined);
  const lab = await startLabProcesses(
    { dir: o.dir, pki, target: { host: '127.0.0.1', port: o.targetPort }, rekeyAfterTime: o.rekeyAfterTime, rekeyJitter: o.rekeyJitter, hardLimitTime: o.hardLimitTime },
    (c) => {
      o.track(c);
      void c.exitedPromise.then(() => {
        if (!stopping) fail(new Error(`${c.name} exited unexpectedly (${JSON.stringify(c.exited)})${tail(c)}`));
      });
    },
    START_MS,
  );
  await lab.gwA.waitFor((l) => l.event === 'epoch_switch', START_MS, 'the first epoch on A');
  await lab.gwB.waitFor((l) => l.event === 'epoch_switch', START_MS, 'the first epoch on B');
  return {
    sim: lab.sim,
    gwA: lab.gwA,
    gwB: lab.gwB,
    servicePort: lab.servicePort,
    abort,
    stop: async () => {
      stopping = true;
      await lab.stop();
    },
  };
}

/** The last warnings/errors a child logged and its last stderr lines, for failure messages. */
export function tail(c: Child): string {
  const warn = c.lines.filter((l: LogLine) => Number((l as { level?: unknown }).level) >= 40).slice(-3).map((l) => JSON.stringify(l).slice(0, 300));
  const err = c.stderr.slice(-5);
  const all = [...warn, ...err];
  return all.length ? `; last ${c.name} output:\n    ${all.join('\n    ')}` : '';
}
