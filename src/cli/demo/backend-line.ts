/**
 * The demo's report of the crypto in use, read from what the gateway processes logged:
 * the AES-256-GCM backend each chose at start (`crypto_backend`, issue 3) and the suite
 * of their epochs (`epoch_switch.suite`, protocol.md s3). Nothing is inferred locally: the
 * demo process's own environment may differ from its children's.
 */
import { suiteInfo } from '../../crypto/suites.js';
import type { LogLine } from './children.js';

/** The AEAD facts of one demo run, as the gateways logged them. */
export interface DemoAead {
  /** Backend per gateway (`native` | `node` | `noble`), or `unknown` when it logged none. */
  backends: Record<string, string>;
  /** The gateway's own sentence why (the `why` of `crypto_backend`). */
  why: Record<string, string>;
  /** Suites of the epochs the gateways switched to so far, ascending, deduplicated. */
  suites: number[];
}

/** Collects the AEAD facts from each named gateway's log lines. */
export function demoAead(gateways: Record<string, LogLine[]>): DemoAead {
  const backends: Record<string, string> = {};
  const why: Record<string, string> = {};
  const suites = new Set<number>();
  for (const [name, lines] of Object.entries(gateways)) {
    const b = lines.find((l) => l.event === 'crypto_backend');
    backends[name] = typeof b?.backend === 'string' ? b.backend : 'unknown';
    why[name] = typeof b?.why === 'string' ? b.why : 'no crypto_backend event logged';
    for (const l of lines) if (l.event === 'epoch_switch' && typeof l.suite === 'number') suites.add(l.suite);
  }
  return { backends, why, suites: [...suites].sort((x, y) => x - y) };
}

/**
 * One line such as
 * `  AEAD backend: native on gw-a and gw-b (auto chose native: ...); suite 1 (X25519+...+AES-256-GCM)`,
 * or each gateway's backend when they differ. Deliberately not prefixed `demo: `, which
 * is reserved for the single verdict line.
 */
export function formatDemoAead(a: DemoAead): string {
  const names = Object.keys(a.backends);
  const distinct = new Set(names.map((n) => a.backends[n]));
  const distinctWhy = new Set(names.map((n) => a.why[n]));
  let backend: string;
  if (distinct.size === 1 && distinctWhy.size === 1) backend = `${a.backends[names[0]]} on ${names.join(' and ')} (${a.why[names[0]]})`;
  else backend = names.map((n) => `${n} ${a.backends[n]} (${a.why[n]})`).join(', ');
  const suites = a.suites.length ? a.suites.map((s) => `suite ${s} (${suiteName(s)})`).join(', ') : 'suite unknown (no epoch yet)';
  return `  AEAD backend: ${backend}; ${suites}`;
}

function suiteName(id: number): string {
  try {
    return suiteInfo(id).name;
  } catch {
    return 'unknown suite';
  }
}
