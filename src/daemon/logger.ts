/**
 * pino JSON-lines logging for the daemon. Redaction is a second fence: no code path logs
 * key bytes, and these paths are censored should one ever try.
 */
import { pino, type DestinationStream } from 'pino';
import type { Logger } from '../util/logger.js';

export const REDACT_PATHS = ['key', 'keys', 'secret', 'prk', 'chain', 'kQkd', '*.key', '*.secret', '*.prk', '*.chain', 'keys[*].key', 'err.config.key'];

/** A pino logger writing JSON lines to `dest` (stdout by default). */
export function makeLogger(opts: { level: string; name: string; dest?: DestinationStream }): Logger {
  return pino(
    {
      level: opts.level,
      name: opts.name,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.dest ?? pino.destination({ fd: 1, sync: true }),
  ) as unknown as Logger;
}
