/**
 * A small client of the KME simulator's test-only admin endpoint (plain HTTP on
 * loopback; routes and bodies in src/kms/simulator/admin-server.ts), as the demo's
 * scenarios drive it: pause and drain the link, add keys, read the state.
 */
import { request } from 'node:http';

/** The parts of the simulator state (`GET /admin/state`) the demo reads. */
export interface KmeAdminState {
  link: { keyRateBps: number; maxKeyCount: number; paused: boolean; keySizeBits: number };
  /** stored_key_count per direction `"KME_A->KME_B"`. */
  stored: Record<string, number>;
  [k: string]: unknown;
}

export class KmeAdmin {
  readonly url: string;
  readonly #timeoutMs: number;

  /** `url`: the `admin` field of the simulator's `kme_sim_started` line, e.g. `http://127.0.0.1:41234`. */
  constructor(url: string, timeoutMs = 5_000) {
    this.url = url.replace(/\/+$/, '');
    this.#timeoutMs = timeoutMs;
  }

  /** `POST /admin/link`: any of keyRateBps (bit/s), maxKeyCount (keys), paused. */
  link(body: { keyRateBps?: number; maxKeyCount?: number; paused?: boolean }): Promise<KmeAdminState> {
    return this.#call('POST', 'link', body);
  }

  /** `POST /admin/drain`: stored_key_count -> 0 (pending keys kept unless `pending`). */
  drain(body: { pending?: boolean } = {}): Promise<KmeAdminState> {
    return this.#call('POST', 'drain', body);
  }

  /** `POST /admin/add_keys`: `count` keys of key_size at once, up to max_key_count. */
  addKeys(count: number): Promise<KmeAdminState> {
    return this.#call('POST', 'add_keys', { count });
  }

  /** `GET /admin/state`. */
  state(): Promise<KmeAdminState> {
    return this.#call('GET', 'state');
  }

  /** The smallest stored_key_count over both directions (they are equal: one link pool). */
  static stored(s: KmeAdminState): number {
    const v = Object.values(s.stored);
    return v.length ? Math.min(...v) : 0;
  }

  /**
   * One admin request; resolves with the state the simulator answers with.
   * @throws Error naming the route and the simulator's `message` on a non-200 answer,
   *   or the socket error / a timeout after `timeoutMs`
   */
  #call(method: 'GET' | 'POST', route: string, body?: unknown): Promise<KmeAdminState> {
    const u = new URL(`/admin/${route}`, this.url);
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: u.hostname.replace(/^\[|\]$/g, ''),
          port: u.port,
          path: u.pathname,
          method,
          agent: false,
          timeout: this.#timeoutMs,
          headers: data ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = null;
            }
            if (res.statusCode !== 200) {
              const msg = (parsed as { message?: unknown } | null)?.message;
              reject(new Error(`KME admin ${method} /admin/${route}: HTTP ${res.statusCode}${typeof msg === 'string' ? `: ${msg}` : ''}`));
              return;
            }
            resolve(parsed as KmeAdminState);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`KME admin ${method} /admin/${route}: no answer within ${this.#timeoutMs} ms`)));
      req.on('error', reject);
      req.end(data);
    });
  }
}
