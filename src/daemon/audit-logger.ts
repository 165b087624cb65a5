/**
 * A Logger that also feeds the key audit trail: every call goes to the inner logger
 * unchanged, and every object with a string `event` is handed to AuditTrail.observe()
 * with the `peer` of the bindings (PeerRuntime binds it with child({peer})). It sees
 * debug lines too (key_pool_fetched), whatever the inner logger's level.
 */
import type { LogFn, Logger } from '../util/logger.js';
import type { AuditTrail } from './audit.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/**
 * Wraps `inner` so the lifecycle events logged through it (and through its children)
 * reach `trail` (or the trail a getter returns at each call; null = none). Events without a peer (no `peer` binding or field) are not audited.
 * Never throws because of the trail (observe() reports its own failures).
 */
export function auditingLogger(inner: Logger, trail: AuditTrail | (() => AuditTrail | null), bindings: Record<string, unknown> = {}): Logger {
  // A getter lets a reload swap or drop the trail under loggers already handed out.
  const current = typeof trail === 'function' ? trail : () => trail;
  const peerOf = (obj: Record<string, unknown>): string | undefined => {
    const p = typeof bindings.peer === 'string' ? bindings.peer : obj.peer;
    return typeof p === 'string' ? p : undefined;
  };
  const wrap = (level: (typeof LEVELS)[number]): LogFn =>
    ((a: unknown, b?: unknown) => {
      const fn = inner[level] as (...args: unknown[]) => void;
      if (b === undefined) fn.call(inner, a);
      else fn.call(inner, a, b);
      if (typeof a === 'object' && a !== null && typeof (a as { event?: unknown }).event === 'string') {
        const obj = a as Record<string, unknown>;
        const peer = peerOf(obj);
        const t = current();
        if (peer !== undefined && t && !t.closed) t.observe(obj.event as string, obj, peer);
      }
    }) as LogFn;
  return {
    trace: wrap('trace'),
    debug: wrap('debug'),
    info: wrap('info'),
    warn: wrap('warn'),
    error: wrap('error'),
    fatal: wrap('fatal'),
    child: (b: Record<string, unknown>) => auditingLogger(inner.child(b), trail, { ...bindings, ...b }),
  };
}
