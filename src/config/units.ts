/**
 * Unit parsers for configuration values (config-sketch.md: durations are strings with
 * units, sizes are strings with binary units, counts are integers). Each returns
 * `{ value }` or `{ error }` (the text of what is expected) so callers can attach a
 * file position; none throws.
 */
import { isIPv4, isIPv6 } from 'node:net';
import ms from 'ms';

export type Parsed<T> = { value: T; error?: undefined } | { value?: undefined; error: string };

/** Schema pattern of a duration: digits (optional decimals) then one of ms, s, m, h, d. */
export const DURATION_RE = /^(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,3})?(?:ms|s|m|h|d)$/;
/**
 * Longest duration accepted: 2^31-1 ms (about 24.8 days). Node's setTimeout fires at once
 * for anything larger, which would turn a long timer into an immediate one.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/**
 * Parses a duration such as `120s`, `5m`, `500ms`, `1.5s` into whole milliseconds.
 * A unit is required (a bare `120` is refused: seconds or milliseconds?). Units: ms, s, m, h, d.
 */
export function parseDuration(text: string): Parsed<number> {
  const expected = 'a duration with a unit (ms, s, m, h, d), e.g. 120s, 5m or 500ms';
  if (typeof text !== 'string' || !DURATION_RE.test(text)) return { error: `expected ${expected}, got ${JSON.stringify(text)}` };
  const v = ms(text as ms.StringValue);
  if (typeof v !== 'number' || !Number.isFinite(v)) return { error: `expected ${expected}, got ${JSON.stringify(text)}` };
  if (!Number.isInteger(v)) return { error: `duration ${text} is not a whole number of milliseconds` };
  if (v > MAX_DURATION_MS) return { error: `duration ${text} is longer than the maximum of 24d (2^31-1 ms)` };
  return { value: v };
}

/** Schema pattern of a size: digits then B, KiB, MiB, GiB, TiB or PiB (binary units only). */
export const SIZE_RE = /^(?:0|[1-9][0-9]{0,15})(?:B|KiB|MiB|GiB|TiB|PiB)$/;
const SIZE_SHIFT: Record<string, number> = { B: 0, KiB: 10, MiB: 20, GiB: 30, TiB: 40, PiB: 50 };

/**
 * Parses a size such as `64GiB` or `512KiB` into bytes. Binary units only (1 KiB = 1024 B);
 * decimal units such as `64GB` are refused so that nobody guesses which was meant.
 * The result must be a safe integer (<= 2^53-1 bytes).
 */
export function parseSize(text: string): Parsed<number> {
  const expected = 'a size with a binary unit (B, KiB, MiB, GiB, TiB, PiB), e.g. 64GiB';
  if (typeof text !== 'string' || !SIZE_RE.test(text)) return { error: `expected ${expected}, got ${JSON.stringify(text)}` };
  const m = /^([0-9]+)([A-Za-z]+)$/.exec(text);
  if (!m) return { error: `expected ${expected}, got ${JSON.stringify(text)}` };
  const bytes = BigInt(m[1]) << BigInt(SIZE_SHIFT[m[2]]);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) return { error: `size ${text} is larger than 2^53-1 bytes` };
  return { value: Number(bytes) };
}

/** `host:port` with the host unbracketed (`::1`, not `[::1]`). */
export interface HostPort {
  host: string;
  port: number;
}

/** Schema pattern of host:port; {@link parseHostPort} does the finer checks. */
export const HOST_PORT_RE = /^(?:\[[0-9A-Fa-f:.]+(?:%[0-9A-Za-z._~-]+)?\]|[0-9A-Za-z](?:[0-9A-Za-z.-]{0,251}[0-9A-Za-z])?):[0-9]{1,5}$/;

/**
 * Parses `host:port`, `[v6addr]:port` or `[fe80::1%eth0]:port`. Hosts are DNS names
 * (labels of 1..63 letters, digits, hyphens, not starting or ending with a hyphen),
 * IPv4 or bracketed IPv6 addresses. Port 1..65535; 0 only when `listen` is set (the OS
 * then picks a port; tests use it). A connect target may not be an unspecified address
 * (`0.0.0.0`, `::`).
 */
export function parseHostPort(text: string, opts: { listen: boolean }): Parsed<HostPort> {
  const expected = 'host:port, e.g. 127.0.0.1:7443, gw-b.example:7443 or [::1]:7443';
  if (typeof text !== 'string' || !HOST_PORT_RE.test(text)) return { error: `expected ${expected}, got ${JSON.stringify(text)}` };
  const cut = text.lastIndexOf(':');
  let host = text.slice(0, cut);
  const portText = text.slice(cut + 1);
  if (portText.length > 1 && portText.startsWith('0')) return { error: `port ${portText} has a leading zero` };
  const port = Number(portText);
  if (port > 65535) return { error: `port ${port} is out of range 0..65535` };
  if (port === 0 && !opts.listen) return { error: 'port 0 is only accepted for a listen address' };
  if (host.startsWith('[')) {
    host = host.slice(1, -1);
    const addr = host.split('%')[0];
    if (!isIPv6(addr)) return { error: `${JSON.stringify(host)} is not a valid IPv6 address` };
  } else if (/^[0-9.]+$/.test(host)) {
    if (!isIPv4(host)) return { error: `${JSON.stringify(host)} is not a valid IPv4 address` };
  } else {
    for (const label of host.split('.')) {
      if (!/^[0-9A-Za-z](?:[0-9A-Za-z-]{0,61}[0-9A-Za-z])?$/.test(label)) {
        return { error: `${JSON.stringify(host)} is not a valid host name (label ${JSON.stringify(label)})` };
      }
    }
  }
  if (!opts.listen && isUnspecified(host)) {
    return { error: `${host} is an unspecified address: a connect target needs a real host` };
  }
  return { value: { host, port } };
}

function isUnspecified(host: string): boolean {
  if (isIPv4(host)) return host === '0.0.0.0';
  const addr = host.split('%')[0];
  return isIPv6(addr) && new URL(`http://[${addr}]/`).hostname === '[::]';
}

/** Formats a HostPort for messages and logs: `[::1]:7443`, `127.0.0.1:7443`. */
export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
