/**
 * The body of `npm run bench:crypto`: measures AEAD SEAL throughput of every backend
 * (native batch 1 and batch 16, node:crypto, noble, and XChaCha20-Poly1305 for
 * reference) per record size, runs `openssl speed` at the same sizes in the same run,
 * probes the native path for per-record allocation, and prints it all, ending with
 * `crypto: native/openssl@1400 = X.XX, native/node@1400 = Y.YY`.
 *
 * Our loops and openssl never run at the same time: each `openssl speed` is awaited
 * while nothing else runs, so the two never share the cores of a small machine.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { loadNative, type NativeStatus } from '../crypto/native/loader.js';
import { AAD_LEN, BACKEND_LABEL, BATCH, makeCells, sealOnlyRunner, type BackendId, type Cell } from './crypto-cells.js';
import { allocationFree, allocProbe, best, timeRunner, type AllocProbe, type Runner, type Sample } from './crypto-measure.js';
import { jsonTargetProblem, UsageError, type CryptoBenchOptions } from './crypto-options.js';
import { finalLine, fmtGrowth, fmtInt, ratioLines, sizeRatios, tableLines, targetLines, type CellResult, type OpensslCell, type SizeRatios } from './crypto-report.js';
import { execOpenssl, opensslSpeedArgs, opensslVersion, runOpensslSpeed, type OpensslExec, type OpensslSpeed } from './openssl-speed.js';

export interface CryptoBenchDeps {
  /**
   * The addon to measure; default {@link loadNative}() (the build path). The entry file
   * passes nativeFromEnv(process.env), so QKDGW_NATIVE / QKDGW_NATIVE_ADDON apply.
   */
  native?: NativeStatus;
  /** Where `native` came from, printed after its path (e.g. `QKDGW_NATIVE_ADDON=./x.node`). */
  nativeFrom?: string;
  /** How `openssl` is run; default the CLI on PATH. */
  opensslExec?: OpensslExec;
  /** Where lines go; default stdout. */
  say?: (line: string) => void;
}

export interface MachineFacts {
  cpu: string;
  cores: number;
  /** The CPU features AES-GCM speed depends on, as /proc/cpuinfo names them (empty when unreadable). */
  cpuFlags: string[];
  node: string;
  /** OpenSSL linked into node (process.versions.openssl). */
  nodeOpenssl: string;
  /** `openssl version`, or why there is none. */
  opensslCli: string;
  loadavg: number[];
}

export interface AllocRow {
  label: string;
  probe: AllocProbe;
  allocationFree: boolean;
}

export interface CryptoBenchResult {
  machine: MachineFacts;
  options: CryptoBenchOptions;
  native: { available: true; path: string } | { available: false; reason: string; path: string };
  cells: CellResult[];
  openssl: OpensslCell[];
  ratios: SizeRatios[];
  /** The allocation probe (empty when the addon is unavailable). */
  alloc: AllocRow[];
  /** Record size of the allocation probe, bytes. */
  allocSize: number;
  finalLine: string;
}

/** Record size of the allocation probe: the carrier record of the final line. */
const PROBE_SIZE = 1400;
/** IV byte of the probe: counter words >= 2^31 are the worst case for 32-bit JS arithmetic. */
const PROBE_IV_BYTE = 0xff;
const GCM_FLAGS = ['aes', 'pclmulqdq', 'avx2', 'vaes', 'vpclmulqdq', 'avx512f'];

function cpuFlags(): string[] {
  try {
    const line = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
    const have = new Set(line.trim().split(/\s+/));
    return GCM_FLAGS.filter((f) => have.has(f));
  } catch {
    return [];
  }
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** Measured seconds per cell: noble runs at a few MB/s, so it gets a quarter. */
function budget(o: CryptoBenchOptions, id: BackendId): number {
  return id === 'noble' ? o.nobleSeconds : o.seconds;
}

/**
 * Runs the benchmark described by `o` and prints it through `deps.say`; writes JSON to
 * `o.json` when set. Resolves with everything printed. Rejects with a UsageError before
 * measuring anything when `o.json` cannot be written (jsonTargetProblem), and otherwise
 * only on a self-check failure (a backend whose output differs from node:crypto) or a
 * failed JSON write; a missing addon or openssl CLI is reported, not thrown.
 */
export async function runCryptoBench(o: CryptoBenchOptions, deps: CryptoBenchDeps = {}): Promise<CryptoBenchResult> {
  const jsonProblem = o.json ? jsonTargetProblem(o.json) : null;
  if (jsonProblem) throw new UsageError(`--json: ${jsonProblem}`);
  const out = deps.say ?? ((s: string): void => void process.stdout.write(`${s}\n`));
  const say = (s = ''): void => out(s);
  const exec = deps.opensslExec ?? execOpenssl;
  const native = deps.native ?? loadNative();
  const binding = native.available ? native.binding : null;
  const ver = await opensslVersion(exec);

  const machine: MachineFacts = {
    cpu: cpus()[0]?.model?.trim() ?? 'unknown',
    cores: cpus().length,
    cpuFlags: cpuFlags(),
    node: process.version,
    nodeOpenssl: process.versions.openssl ?? 'none',
    opensslCli: ver.ok ? ver.version : `unavailable: ${ver.reason}`,
    loadavg: loadavg(),
  };
  const perRep = (s: number): string => `${+(s / o.reps).toFixed(3)} s`;
  say('qkdgw bench:crypto: AEAD seal throughput per backend, with `openssl speed` measured in the same run');
  say(`  CPU ${machine.cpu} (${machine.cores} logical cores; flags: ${machine.cpuFlags.join(' ') || 'unknown'}), load average ${machine.loadavg.map((x) => x.toFixed(2)).join(' ')}`);
  say(`  node ${machine.node} (linked OpenSSL ${machine.nodeOpenssl}); openssl CLI: ${machine.opensslCli}`);
  const from = deps.nativeFrom ? ` (${deps.nativeFrom})` : '';
  say(native.available ? `  native addon: loaded from ${native.path}${from}` : `  native addon: unavailable: ${native.reason}${from}`);
  say(`  each record: SEAL of N plaintext bytes with a ${AAD_LEN}-byte AAD and a fresh nonce from the counter (iv XOR counter); batch 16 = ${BATCH} records per addon call, layout built once`);
  say(`  MB/s = 10^6 plaintext bytes per second of wall time; packets/s = records per second`);
  say(`  per cell: warm-up, then ${o.reps} repetition(s) of ${perRep(o.seconds)}, best reported; noble (pure JS, very slow) gets a shorter budget: ${o.reps} x ${perRep(o.nobleSeconds)}`);
  say(`  openssl: \`openssl ${opensslSpeedArgs(1, o.opensslSeconds).join(' ').replace('-bytes 1 ', '-bytes N ')}\` once per repetition, alone on the machine, best reported (its -aead loop sets the IV and a 13-byte AAD per record)`);
  say(`  ratios native/openssl and native/node use native batch 16 unless marked batch 1`);
  say();

  const cells: CellResult[] = [];
  const openssl: OpensslCell[] = [];
  for (const [i, size] of o.sizes.entries()) {
    const made: Cell[] = makeCells(size, binding);
    const samples = new Map<Cell, Sample[]>(made.map((c) => [c, []]));
    const runs: OpensslSpeed[] = [];
    try {
      for (const c of made) c.selfCheck();
      for (const c of made) timeRunner(c, c.id === 'noble' ? clamp(o.nobleSeconds / 4, 0.005, 0.1) : clamp(o.seconds / 4, 0.01, 0.25));
      for (let rep = 0; rep < o.reps; rep++) {
        for (const c of made) samples.get(c)!.push(timeRunner(c, budget(o, c.id) / o.reps));
        if (ver.ok) runs.push(await runOpensslSpeed(size, o.opensslSeconds, exec));
      }
    } finally {
      for (const c of made) c.destroy();
    }
    for (const c of made) {
      const s = samples.get(c)!;
      const b = best(s);
      cells.push({ size, backend: c.id, packetsPerSec: b.packetsPerSec, mbPerSec: (b.packetsPerSec * size) / 1e6, reps: s.map((x) => x.packetsPerSec), secondsPerRep: budget(o, c.id) / o.reps });
    }
    const good = runs.filter((r): r is Extract<OpensslSpeed, { ok: true }> => r.ok);
    if (good.length > 0) {
      const pps = Math.max(...good.map((r) => r.packetsPerSec));
      openssl.push({ size, ok: true, packetsPerSec: pps, mbPerSec: (pps * size) / 1e6, reps: good.map((r) => r.packetsPerSec) });
    } else {
      const failed = runs.find((r): r is Extract<OpensslSpeed, { ok: false }> => !r.ok);
      openssl.push({ size, ok: false, reason: failed?.reason ?? (ver.ok ? 'not run' : ver.reason) });
    }
    for (const l of tableLines(size, cells, openssl, i === 0)) say(l);
  }
  say();

  const ratios = o.sizes.map((s) => sizeRatios(s, cells, openssl));
  say('ratios per size (packets/s; the same as MB/s at one size):');
  for (const l of ratioLines(ratios)) say(l);
  if (!ver.ok) say(`  openssl ratios are n/a: ${ver.reason}`);
  if (!native.available) say(`  native ratios are n/a: the addon is unavailable (${native.reason})`);
  say('targets of issue 3 (reported, not asserted):');
  for (const l of targetLines(ratios)) say(l);
  say();

  const alloc: AllocRow[] = [];
  if (binding) {
    say(`allocation probe of the native path: ${fmtInt(o.allocRecords)} records of ${PROBE_SIZE} bytes each, IV bytes 0x${PROBE_IV_BYTE.toString(16)} (counter words >= 2^31, the worst case), growth scaled to 10^6 records:`);
    const probeCells = makeCells(PROBE_SIZE, binding, { ivByte: PROBE_IV_BYTE });
    const sealOnly = sealOnlyRunner(PROBE_SIZE, binding);
    const byId = (id: BackendId): Cell => probeCells.find((c) => c.id === id)!;
    const plan: Array<[string, Runner, number]> = [
      [`${BACKEND_LABEL['native-b16']}`, byId('native-b16'), o.allocRecords],
      [`${BACKEND_LABEL['native-b1']} (sealAt: iv + counter)`, byId('native-b1'), o.allocRecords],
      [`${BACKEND_LABEL['native-b1']} (seal, fixed nonce)`, sealOnly, o.allocRecords],
      [`${BACKEND_LABEL.node} (for contrast)`, byId('node'), Math.max(1000, Math.round(o.allocRecords / 10))],
    ];
    try {
      for (const [label, r, n] of plan) {
        const probe = await allocProbe(r, n);
        const free = allocationFree(probe);
        alloc.push({ label, probe, allocationFree: free });
        const est = probe.bytesPerRecord == null ? 'unknown' : `about ${probe.bytesPerRecord.toFixed(1)}`;
        const verdict = free ? 'no per-record allocation' : `allocates (${est} heap bytes per record)`;
        say(
          `  ${label.padEnd(34)} heapUsed ${fmtGrowth(probe.heapPerMillion, probe.gcs)}, arrayBuffers ${fmtGrowth(probe.arrayBuffersPerMillion, probe.gcs)}, GCs ${probe.gcs} in ${fmtInt(probe.records)} records: ${verdict}`,
        );
      }
    } finally {
      for (const c of probeCells) c.destroy();
      sealOnly.destroy();
    }
    const nonceRow = alloc[1];
    if (nonceRow && !nonceRow.allocationFree && alloc[2]?.allocationFree) {
      say('  the batch 1 allocation is outside the addon call (which allocates nothing with a fixed nonce): look at the per-record JavaScript around it');
    }
    say();
  }

  const line = finalLine(native.available ? { available: true } : { available: false, reason: native.reason }, ratios);
  const result: CryptoBenchResult = {
    machine,
    options: o,
    native: native.available ? { available: true, path: native.path } : { available: false, reason: native.reason, path: native.path },
    cells,
    openssl,
    ratios,
    alloc,
    allocSize: PROBE_SIZE,
    finalLine: line,
  };
  if (o.json) {
    writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
    say(`results written to ${o.json}`);
  }
  say(line);
  return result;
}
