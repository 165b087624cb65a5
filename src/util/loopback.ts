/**
 * Loopback addresses. The simulator's admin endpoint and the gateway's metrics are plain HTTP
 * without authentication, so they may only listen where no other host can reach them.
 */
import { isIPv4, isIPv6 } from 'node:net';

/**
 * True for `localhost`, IPv4 127.0.0.0/8, IPv6 `::1` and IPv4-mapped `::ffff:127.x.y.z`.
 * `localhost` is accepted by name; the admin server checks the address it actually bound.
 */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  if (isIPv4(host)) return host.split('.')[0] === '127';
  // A zone index (`fe80::1%eth0`) never makes an address loopback; URL refuses it.
  const addr = host.split('%')[0];
  if (isIPv6(addr)) {
    const canonical = new URL(`http://[${addr}]/`).hostname.slice(1, -1);
    if (canonical === '::1') return true;
    const mapped = /^::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}$/.exec(canonical);
    return mapped !== null && parseInt(mapped[1], 16) >> 8 === 127;
  }
  return false;
}
