/**
 * The human form of `qkdgw status`: a header, one row per peer, one row per key pool, and
 * the readiness line. Pure: a GatewaySnapshot in, text out (tests compare exact lines).
 * Every value shows its unit (s/min/h/d, B/KiB/MiB/GiB, /s). Strings that come from the
 * daemon (peer names, KME error messages, paths) are printed with control characters
 * escaped, so a hostile KME error text cannot drive the terminal.
 */
import type { GatewaySnapshot, PeerSnapshot, PoolSnapshot } from '../daemon/snapshot.js';
import { suiteInfo } from '../crypto/suites.js';

/** Renders the whole status; lines end in `\n`, no trailing spaces. */
export function renderStatus(s: GatewaySnapshot): string {
  const lines: string[] = [];
  const head: Array<[string, string]> = [
    ['gateway', `${clean(s.identity)} (pid ${s.pid})`],
    ['uptime', formatSeconds(s.uptimeSec)],
    ['backend', s.backend === null ? '- (not selected)' : clean(s.backend)],
    ['config', clean(s.configFile)],
    ['KME', clean(s.kme.url)],
    ['reloads', formatReloads(s.reloads)],
  ];
  const w = Math.max(...head.map(([k]) => k.length));
  for (const [k, v] of head) lines.push(`${k.padEnd(w)}  ${v}`);

  lines.push('');
  if (s.peers.length === 0) lines.push('peers: none');
  else lines.push(...table(PEER_COLUMNS, s.peers.map(peerRow)));

  lines.push('');
  if (s.kme.pools.length === 0) lines.push('key pools: none (this gateway initiates to no peer)');
  else lines.push(...table(POOL_COLUMNS, s.kme.pools.map(poolRow)));

  lines.push('');
  lines.push(s.stopping ? 'ready: no (stopping)' : s.notReady.length === 0 ? 'ready: yes' : `not ready: peers ${s.notReady.map(clean).join(', ')} (not up, or not in qkd mode under qkd: required)`);
  return `${lines.map((l) => l.trimEnd()).join('\n')}\n`;
}

interface Column {
  title: string;
  /** Numbers are right-aligned. */
  right?: boolean;
}

const PEER_COLUMNS: Column[] = [
  { title: 'PEER' },
  { title: 'ROLE' },
  { title: 'STATE' },
  { title: 'MODE' },
  { title: 'EPOCH', right: true },
  { title: 'EPOCH AGE', right: true },
  { title: 'SUITE' },
  { title: 'FLOWS', right: true },
  { title: 'SEALED', right: true },
  { title: 'OPENED', right: true },
  { title: 'REKEYS', right: true },
  { title: 'HS FAILED', right: true },
  { title: 'AUTH FAILED', right: true },
  { title: 'REPLAY DROPS', right: true },
];

function peerRow(p: PeerSnapshot): string[] {
  return [
    clean(p.peer),
    p.role,
    p.state,
    p.mode,
    p.epoch === null ? '-' : String(p.epoch),
    formatSeconds(p.epochAgeSec),
    p.suite === null ? '-' : suiteName(p.suite),
    String(p.flowsOpen),
    `${p.recordsSealed} rec / ${formatBytes(p.bytesSealed)}`,
    `${p.recordsOpened} rec / ${formatBytes(p.bytesOpened)}`,
    String(sum(p.rekeysByReason)),
    String(sum(p.handshakeFailuresByReason)),
    String(p.authFailures),
    String(p.replayDrops),
  ];
}

const POOL_COLUMNS: Column[] = [
  { title: 'KEY POOL' },
  { title: 'STOCK/TARGET', right: true },
  { title: 'KME STORED', right: true },
  { title: 'CONSUMPTION', right: true },
  { title: 'POOL DRY IN', right: true },
  { title: 'KME DRY IN', right: true },
  { title: 'FORECAST LOW' },
  { title: 'LAST ERROR' },
];

function poolRow(p: PoolSnapshot): string[] {
  const e = p.lastError;
  return [
    clean(p.peerSaeId),
    `${p.stock}/${p.target}`,
    p.kmeStoredKeyCount === null ? '?' : String(p.kmeStoredKeyCount),
    `${p.consumptionPerSec.toFixed(2)}/s`,
    p.forecastPoolDrySec === null ? 'never' : formatSeconds(p.forecastPoolDrySec),
    // Unknown before the first status read; null after one means supply keeps up.
    p.kmeStoredKeyCount === null ? '?' : p.forecastKmeDrySec === null ? 'never' : formatSeconds(p.forecastKmeDrySec),
    p.forecastLow ? 'yes' : 'no',
    e === null ? '-' : cut(`${e.op}: ${clean(e.code)}: ${clean(e.message)}`, 100),
  ];
}

/** At most `n` characters (a long KME message must not push the table off the screen; --json has it whole). */
function cut(text: string, n: number): string {
  return text.length <= n ? text : `${text.slice(0, n - 3)}...`;
}

/** Columns padded to their widest cell, two spaces apart. */
function table(cols: Column[], rows: string[][]): string[] {
  const widths = cols.map((c, i) => Math.max(c.title.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((v, i) => (cols[i].right ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ');
  return [line(cols.map((c) => c.title)), ...rows.map(line)];
}

function formatReloads(r: GatewaySnapshot['reloads']): string {
  const base = `${r.ok} ok, ${r.failed} failed`;
  if (r.last === null) return base;
  return `${base}; last ${clean(r.last.at)} ${r.last.ok ? 'ok' : 'failed'}${r.last.detail ? `: ${clean(r.last.detail)}` : ''}`;
}

/** The AEAD part of the suite name (protocol.md s3): `AES-256-GCM`, `XChaCha20-Poly1305`. */
function suiteName(id: number): string {
  try {
    return suiteInfo(id).name.split('/').pop()!;
  } catch {
    return `suite ${id}`;
  }
}

function sum(m: Record<string, number>): number {
  return Object.values(m).reduce((a, b) => a + b, 0);
}

/**
 * Seconds with a unit: `4.2 s` below 10 s, `42 s` below 2 min, then `min`, `h` (from 2 h)
 * and `d` (from 2 d) with one decimal. null -> `-`.
 */
export function formatSeconds(sec: number | null): string {
  if (sec === null || !Number.isFinite(sec)) return '-';
  if (sec < 10) return `${sec.toFixed(1)} s`;
  if (sec < 120) return `${Math.round(sec)} s`;
  if (sec < 7_200) return `${(sec / 60).toFixed(1)} min`;
  if (sec < 172_800) return `${(sec / 3_600).toFixed(1)} h`;
  return `${(sec / 86_400).toFixed(1)} d`;
}

/** Bytes with a binary unit: `512 B`, `1.5 KiB`, `4.0 MiB`, ... `PiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let i = 0;
  // 1023.96 KiB prints as 1.0 MiB, not 1024.0 KiB.
  while (v >= 1023.95 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** C0/C1 controls and bidi overrides escaped as \xNN / \uNNNN: text from the daemon cannot move the cursor. */
export function clean(s: string): string {
  return String(s).replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}
