/**
 * The lab as real processes: `qkdgw kme-sim`, then `qkdgw run` for gw-b, then gw-a.
 * Every listener binds port 0 and the next config is written from the ports the
 * previous process logged, so no port is ever guessed (parallel labs cannot collide).
 */
import { join } from 'node:path';
import { labFiles, writeGwAConfig, writeGwBConfig, writeSimConfig, type LabAddresses, type LabFiles, type LabOptions } from '../../daemon/lab.js';
import { Child } from './children.js';

export interface LabProcesses {
  sim: Child;
  gwA: Child;
  gwB: Child;
  files: LabFiles;
  /** gw-a's service `web` port. */
  servicePort: number;
  /** The simulator's admin endpoint URL (`http://127.0.0.1:PORT`), null unless `simAdmin` was set. */
  adminUrl: string | null;
  /** Stops gw-a, gw-b, then the simulator (SIGTERM, SIGKILL after a grace). */
  stop(): Promise<void>;
}

/** Starts the three processes; on failure stops what started and throws. `started` sees each child as it starts. */
export async function startLabProcesses(o: LabOptions, started: (c: Child) => void = () => undefined, timeoutMs = 20_000): Promise<LabProcesses> {
  const kids: Child[] = [];
  const spawn = (name: string, args: string[]): Child => {
    const c = new Child(name, args, join(o.dir, `${name}.log`));
    kids.push(c);
    started(c);
    return c;
  };
  const stop = async (): Promise<void> => {
    for (const c of [...kids].reverse()) await c.stop();
  };
  try {
    const files = labFiles(o.dir);
    writeSimConfig(o);
    const sim = spawn('kme-sim', ['kme-sim', '--config', files.kmeSim]);
    const simUp = await sim.waitFor((l) => l.event === 'kme_sim_started', timeoutMs, 'simulator start');
    const urls = (simUp.kmes as Array<{ kme: string; url: string }>).reduce<Record<string, string>>((m, k) => ({ ...m, [k.kme]: k.url }), {});
    const addr: LabAddresses = { kmeAUrl: urls.KME_A, kmeBUrl: urls.KME_B };
    writeGwBConfig(o, addr);
    const gwB = spawn('gw-b', ['run', '--config', files.gwB]);
    const bUp = await gwB.waitFor((l) => l.event === 'gateway_started', timeoutMs, 'gateway B start');
    addr.controlB = Number(bUp.control);
    addr.dataB = Number(bUp.data);
    writeGwAConfig(o, addr);
    const gwA = spawn('gw-a', ['run', '--config', files.gwA]);
    const aUp = await gwA.waitFor((l) => l.event === 'gateway_started', timeoutMs, 'gateway A start');
    const servicePort = Number((aUp.services as Record<string, number>).web);
    const adminUrl = typeof simUp.admin === 'string' ? simUp.admin : null;
    return { sim, gwA, gwB, files, servicePort, adminUrl, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
