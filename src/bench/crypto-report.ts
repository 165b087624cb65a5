/**
 * The printed result of `npm run bench:crypto`: the table (size | backend | packets/s |
 * MB/s | ratio vs openssl), the native/openssl and native/node ratios per size, the
 * targets of issue 3, and the final machine-readable line. Pure functions only.
 */
import { BACKEND_LABEL, type BackendId } from './crypto-cells.js';

/** One measured (size, backend) cell; MB = 10^6 bytes of plaintext. */
export interface CellResult {
  size: number;
  backend: BackendId;
  /** Best repetition, records per second. */
  packetsPerSec: number;
  mbPerSec: number;
  /** Every repetition's records per second, in run order. */
  reps: number[];
  /** Measured seconds per repetition (the budget; each run may overshoot by one chunk). */
  secondsPerRep: number;
}

/** `openssl speed` at one size: the best of its runs, or why there is none. */
export type OpensslCell =
  | { size: number; ok: true; packetsPerSec: number; mbPerSec: number; reps: number[] }
  | { size: number; ok: false; reason: string };

/** The ratios of one size; null where a side is missing (printed n/a). */
export interface SizeRatios {
  size: number;
  b16OverOpenssl: number | null;
  b1OverOpenssl: number | null;
  b16OverNode: number | null;
  b1OverNode: number | null;
}

/** The size of the final line: a carrier record that fills a 1500-byte MTU. */
export const FINAL_SIZE = 1400;

/** Issue 3's targets (reported, never asserted). */
export const TARGETS = { b16OverOpenssl1400: 1.2, b16OverNode1400: 8, b1OverOpenssl64: 1.0 } as const;

/** a / b, or null when either is missing, not finite, or not positive. */
export function ratioOf(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || a <= 0 || b <= 0) return null;
  return a / b;
}

/** Two decimals, or `n/a` for a missing ratio. */
export function fmtRatio(r: number | null | undefined): string {
  return r == null || !Number.isFinite(r) ? 'n/a' : r.toFixed(2);
}

/** 1234567.8 -> "1,234,568" (no locale dependence). */
export function fmtInt(x: number): string {
  return Math.round(x)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function rate(cells: readonly CellResult[], size: number, b: BackendId): number | null {
  return cells.find((c) => c.size === size && c.backend === b)?.packetsPerSec ?? null;
}

function opensslRate(openssl: readonly OpensslCell[], size: number): number | null {
  const o = openssl.find((x) => x.size === size);
  return o?.ok ? o.packetsPerSec : null;
}

/**
 * A probe's growth in bytes (scaled to 10^6 records) for printing: `+1,234 B`. A negative
 * figure means memory was freed during the probe (a GC collected garbage from before it),
 * which says nothing about the loop: it prints as `+0 B (GC ran)` (or `+0 B (shrank)`
 * when no GC was seen), never as a loop that gives memory back. `gcs` = GCs in the probe.
 */
export function fmtGrowth(bytes: number, gcs: number): string {
  if (Number.isNaN(bytes)) return 'n/a';
  if (bytes >= 0) return `+${fmtInt(bytes)} B`;
  return gcs > 0 ? '+0 B (GC ran)' : '+0 B (shrank)';
}

/** Ratios of packets/s at `size` (equal to the MB/s ratios: same record size). */
export function sizeRatios(size: number, cells: readonly CellResult[], openssl: readonly OpensslCell[]): SizeRatios {
  const o = opensslRate(openssl, size);
  const node = rate(cells, size, 'node');
  const b1 = rate(cells, size, 'native-b1');
  const b16 = rate(cells, size, 'native-b16');
  return { size, b16OverOpenssl: ratioOf(b16, o), b1OverOpenssl: ratioOf(b1, o), b16OverNode: ratioOf(b16, node), b1OverNode: ratioOf(b1, node) };
}

const HEAD = `${'size'.padStart(6)}  ${'backend'.padEnd(26)} ${'packets/s'.padStart(12)} ${'MB/s'.padStart(9)}  ${'vs openssl'.padStart(10)}  spread`;

/**
 * Table lines for one size: the openssl reference first, then each backend measured.
 * `spread` is (best - worst) / best over the repetitions, a hint of how noisy the cell was.
 */
export function tableLines(size: number, cells: readonly CellResult[], openssl: readonly OpensslCell[], withHeader = false): string[] {
  const out = withHeader ? [HEAD] : [];
  const o = openssl.find((x) => x.size === size);
  const spread = (reps: number[]): string => {
    if (reps.length < 2) return '-';
    const hi = Math.max(...reps);
    return `${(((hi - Math.min(...reps)) / hi) * 100).toFixed(0)}%`;
  };
  const row = (label: string, pps: number, mbps: number, vs: string, sp: string): string =>
    `${String(size).padStart(6)}  ${label.padEnd(26)} ${fmtInt(pps).padStart(12)} ${mbps.toFixed(1).padStart(9)}  ${vs.padStart(10)}  ${sp}`;
  if (o?.ok) out.push(row('openssl speed -aead', o.packetsPerSec, o.mbPerSec, '1.00', spread(o.reps)));
  else out.push(`${String(size).padStart(6)}  ${'openssl speed -aead'.padEnd(26)} ${'n/a'.padStart(12)} ${'n/a'.padStart(9)}  ${''.padStart(10)}  (${o?.reason ?? 'not run'})`);
  const ref = o?.ok ? o.packetsPerSec : null;
  for (const c of cells.filter((x) => x.size === size)) {
    out.push(row(BACKEND_LABEL[c.backend], c.packetsPerSec, c.mbPerSec, fmtRatio(ratioOf(c.packetsPerSec, ref)), spread(c.reps)));
  }
  return out;
}

/** One line per size: native batch16 and batch1 against openssl and against node. */
export function ratioLines(ratios: readonly SizeRatios[]): string[] {
  return ratios.map(
    (r) =>
      `${String(r.size).padStart(6)} B: native/openssl = ${fmtRatio(r.b16OverOpenssl)} (batch 16), ${fmtRatio(r.b1OverOpenssl)} (batch 1);` +
      ` native/node = ${fmtRatio(r.b16OverNode)} (batch 16), ${fmtRatio(r.b1OverNode)} (batch 1)`,
  );
}

/** The targets of issue 3 with the measured value and met / missed / not measured. */
export function targetLines(ratios: readonly SizeRatios[]): string[] {
  const at = (size: number): SizeRatios | undefined => ratios.find((r) => r.size === size);
  const line = (what: string, got: number | null | undefined, want: number): string =>
    `  ${what} >= ${want.toFixed(2)}: ${got == null ? 'not measured' : `${got.toFixed(2)} ${got >= want ? 'met' : 'MISSED'}`}`;
  return [
    line('native batch 16 / openssl @1400', at(1400)?.b16OverOpenssl, TARGETS.b16OverOpenssl1400),
    line('native batch 16 / node    @1400', at(1400)?.b16OverNode, TARGETS.b16OverNode1400),
    line('native batch 1  / openssl @64  ', at(64)?.b1OverOpenssl, TARGETS.b1OverOpenssl64),
  ];
}

/**
 * `crypto: native/openssl@1400 = X.XX, native/node@1400 = Y.YY` (native = batch 16, the
 * way the gateway seals a burst of carrier records; n/a for a side not measured), or
 * `crypto: native unavailable (<reason>)`.
 */
export function finalLine(native: { available: true } | { available: false; reason: string }, ratios: readonly SizeRatios[]): string {
  if (!native.available) return `crypto: native unavailable (${native.reason})`;
  const r = ratios.find((x) => x.size === FINAL_SIZE);
  return `crypto: native/openssl@${FINAL_SIZE} = ${fmtRatio(r?.b16OverOpenssl)}, native/node@${FINAL_SIZE} = ${fmtRatio(r?.b16OverNode)}`;
}
