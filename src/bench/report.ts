/**
 * The printed result of `npm run bench`: one table row per measured flow, the ratios
 * tunnel/direct per direction, and the final machine-readable line.
 */
import type { Direction, FlowResult } from './flows.js';

export type PathName = 'direct' | 'tunnel';

export interface Row {
  path: PathName;
  result: FlowResult;
  /** gw-a's epoch before and after the flow (tunnel rows; shows rekeys during the flow). */
  epochs?: { from: number; to: number };
}

const MiB = 2 ** 20;

/** tunnel MB/s divided by direct MB/s for one direction; NaN when a row is missing. */
export function ratio(rows: Row[], d: Direction): number {
  const get = (p: PathName): number => rows.find((r) => r.path === p && r.result.direction === d)?.result.mbps ?? Number.NaN;
  return get('tunnel') / get('direct');
}

/** The table as lines of text (MB = 10^6 bytes). */
export function table(rows: Row[]): string[] {
  const out = ['direction  path                 MiB moved   seconds      MB/s  epochs (gw-a)'];
  for (const r of rows) {
    const secs = Number(r.result.received.lastNs - r.result.received.firstNs) / 1e9;
    const path = r.path === 'direct' ? 'direct TCP' : 'tunnel gw-a -> gw-b';
    const ep = r.epochs ? (r.epochs.from === r.epochs.to ? `${r.epochs.from}` : `${r.epochs.from} -> ${r.epochs.to}`) : '-';
    out.push(
      `${r.result.direction.padEnd(10)} ${path.padEnd(20)} ${(r.result.received.bytes / MiB).toFixed(1).padStart(9)} ${secs.toFixed(3).padStart(9)} ${r.result.mbps.toFixed(1).padStart(9)}  ${ep}`,
    );
  }
  return out;
}

/** `bench: tunnel/direct upload = X.XX, download = Y.YY` */
export function finalLine(rows: Row[]): string {
  return `bench: tunnel/direct upload = ${ratio(rows, 'upload').toFixed(2)}, download = ${ratio(rows, 'download').toFixed(2)}`;
}
