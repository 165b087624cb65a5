/**
 * One registry of typed errors with stable codes (`QKDGW_E_*`).
 *
 * Every error the gateway raises on purpose is a {@link QkdgwError} carrying one of
 * these codes, so logs, metrics and tests match on the code, never on message text.
 * The README lists them. User-facing messages say what happened and what to do.
 */
export const ErrorCodes = {
  // configuration
  CONFIG_INVALID: 'QKDGW_E_CONFIG_INVALID',
  CONFIG_EMPTY: 'QKDGW_E_CONFIG_EMPTY',
  CONFIG_READ: 'QKDGW_E_CONFIG_READ',
  CONFIG_RELOAD: 'QKDGW_E_CONFIG_RELOAD',
  FILE_PERMISSIONS: 'QKDGW_E_FILE_PERMISSIONS',
  // crypto primitives
  CRYPTO_LENGTH: 'QKDGW_E_CRYPTO_LENGTH',
  X25519_LOW_ORDER: 'QKDGW_E_X25519_LOW_ORDER',
  MLKEM_BAD_KEY: 'QKDGW_E_MLKEM_BAD_KEY',
  MLKEM_BAD_CIPHERTEXT: 'QKDGW_E_MLKEM_BAD_CIPHERTEXT',
  SELFTEST_FAILED: 'QKDGW_E_SELFTEST_FAILED',
  CRYPTO_BACKEND: 'QKDGW_E_CRYPTO_BACKEND',
  // ETSI GS QKD 014 client (KMS)
  KMS_TLS: 'QKDGW_E_KMS_TLS',
  KMS_CONNECT: 'QKDGW_E_KMS_CONNECT',
  KMS_TIMEOUT: 'QKDGW_E_KMS_TIMEOUT',
  KMS_AUTH: 'QKDGW_E_KMS_AUTH',
  KMS_REQUEST: 'QKDGW_E_KMS_REQUEST',
  KMS_EXHAUSTED: 'QKDGW_E_KMS_EXHAUSTED',
  KMS_UNAVAILABLE: 'QKDGW_E_KMS_UNAVAILABLE',
  KMS_KEY_UNAVAILABLE: 'QKDGW_E_KMS_KEY_UNAVAILABLE',
  KMS_PROTOCOL: 'QKDGW_E_KMS_PROTOCOL',
  KMS_KEY_INVALID: 'QKDGW_E_KMS_KEY_INVALID',
  KMS_KEY_REUSED: 'QKDGW_E_KMS_KEY_REUSED',
  KMS_STATUS_INVALID: 'QKDGW_E_KMS_STATUS_INVALID',
  KMS_CONFIG: 'QKDGW_E_KMS_CONFIG',
  // wire and protocol
  WIRE_MALFORMED: 'QKDGW_E_WIRE_MALFORMED',
  PROTOCOL: 'QKDGW_E_PROTOCOL',
  // PKI and certificates
  PKI: 'QKDGW_E_PKI',
  CERT: 'QKDGW_E_CERT',
  // runtime
  LISTEN: 'QKDGW_E_LISTEN',
  INTERNAL: 'QKDGW_E_INTERNAL',
  // key audit trail (src/daemon/audit.ts)
  AUDIT_FILE: 'QKDGW_E_AUDIT_FILE',
  AUDIT_FIELD: 'QKDGW_E_AUDIT_FIELD',
  // service manager (native/src/sd_notify.c)
  SD_NOTIFY: 'QKDGW_E_SD_NOTIFY',
  // local admin socket for `qkdgw status` (src/daemon/admin-socket.ts)
  ADMIN_SOCKET: 'QKDGW_E_ADMIN_SOCKET',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base class of every deliberate gateway error. `code` is stable; `details` never holds key bytes. */
export class QkdgwError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QkdgwError';
    this.code = code;
    this.details = details;
  }
}

/** True when `e` is a QkdgwError, optionally with the given code. */
export function isQkdgwError(e: unknown, code?: ErrorCode): e is QkdgwError {
  return e instanceof QkdgwError && (code === undefined || e.code === code);
}
