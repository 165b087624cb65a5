/**
 * Constants of the tunnel, split into what a spec fixes and what we chose.
 */

/** Fixed by protocol.md (QGW-1). Changing one breaks interoperability. */
export const Spec = {
  /** protocol.md s2: HELLO.version. */
  VERSION: 1,
  /** protocol.md s2: TLS exporter label, 32 bytes, empty context. */
  EXPORTER_LABEL: 'EXPERIMENTAL-qkdgw-v1',
  EXPORTER_LEN: 32,
  /** protocol.md s3: nonce sizes. */
  NONCE_LEN: 32,
  /** protocol.md s3: one 256-bit QKD key per epoch. */
  QKD_KEY_BITS: 256,
  QKD_KEY_LEN: 32,
  /** protocol.md s3.3: INIT.epoch <= L + 2^16 while the responder holds state. */
  EPOCH_WINDOW: 2 ** 16,
  /** protocol.md s2: integers are JSON numbers with Number.isSafeInteger true, epochs included. */
  MAX_EPOCH: Number.MAX_SAFE_INTEGER,
  /** protocol.md s3.4: key_IDs remembered per pair. */
  KEY_ID_MEMORY: 65_536,
  /** protocol.md s3.4: the responder's dec_keys must end within 3 s of INIT. */
  DEC_KEYS_DEADLINE_MS: 3_000,
  /** protocol.md s1: a responder's time trigger is the initiator's + 10 s. */
  RESPONDER_REKEY_EXTRA_MS: 10_000,
  /** protocol.md s2: reconnect/backoff bounds. */
  BACKOFF_MIN_MS: 500,
  BACKOFF_MAX_MS: 30_000,
  /** protocol.md s6: after 90 s of failures, alarm and retry every 30 s. */
  FAILURE_ALARM_AFTER_MS: 90_000,
  /** protocol.md s2: control liveness. */
  PING_AFTER_MS: 10_000,
  DEAD_AFTER_MS: 30_000,
  /** protocol.md s2: frame length bound. */
  MAX_CONTROL_FRAME: 65_536,
  /** protocol.md s2: receiver_index range 1..2^32-1. */
  RECEIVER_INDEX_MAX: 2 ** 32 - 1,
  /** protocol.md s6 `preferred`: a degraded epoch rekeys after 60 s. */
  DEGRADED_LIFETIME_MS: 60_000,
  /** protocol.md s6 `preferred`: 3 consecutive good status checks before QKD again. */
  RECOVERY_CHECKS: 3,
  /** protocol.md s6 `preferred`: key_unavailable on this many consecutive QKD INITs -> degraded. */
  KEY_UNAVAILABLE_STEP_DOWN: 3,
  /** protocol.md s6: KME status checks 10 s apart. */
  STATUS_INTERVAL_MS: 10_000,
  /** mode bits (protocol.md s3). */
  MODE_CHAINED: 0x01,
  MODE_DEGRADED: 0x02,
} as const;

/** Our choices, each with why. */
export const Choice = {
  /** Handshakes that failed in a row before `handshake_failing` alarms (s6: after 90 s). */
  LOG_RATE_LIMIT_MS: 10_000,
} as const;
