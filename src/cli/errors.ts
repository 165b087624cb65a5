/** Maps an error at start-up to a message and an exit status. */
import { isQkdgwError, ErrorCodes } from '../errors.js';
import { formatConfigError, isConfigError } from '../config/issues.js';
import { Exit } from './exit-codes.js';

const CONFIG_CODES = new Set<string>([ErrorCodes.CONFIG_INVALID, ErrorCodes.CONFIG_EMPTY, ErrorCodes.CONFIG_READ, ErrorCodes.FILE_PERMISSIONS, ErrorCodes.CRYPTO_BACKEND, ErrorCodes.AUDIT_FILE]);

export function describeStartError(e: unknown): { message: string; exit: number } {
  if (isConfigError(e)) return { message: formatConfigError(e), exit: Exit.CONFIG };
  if (isQkdgwError(e) && (CONFIG_CODES.has(e.code) || e.details?.configuration === true)) return { message: `${e.code}: ${e.message}`, exit: Exit.CONFIG };
  if (isQkdgwError(e)) return { message: `${e.code}: ${e.message}`, exit: Exit.FAILURE };
  return { message: e instanceof Error ? e.message : String(e), exit: Exit.FAILURE };
}
