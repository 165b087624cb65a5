/** Data shapes of ETSI GS QKD 014 V1.1.1 as the gateway sees them (etsi014.md s1.4, s1.5). */
import type { SecretBytes } from '../../util/secret.js';

/**
 * Status (ETSI GS QKD 014 s6.1, Table 9). Field names are the spec's. Sizes are in bits,
 * counts are key counts. Values are advisory (etsi014.md A17): see statusInconsistencies().
 */
export interface KmeStatus {
  source_KME_ID: string;
  target_KME_ID: string;
  master_SAE_ID: string;
  slave_SAE_ID: string;
  /** default key size, bits */
  key_size: number;
  stored_key_count: number;
  max_key_count: number;
  max_key_per_request: number;
  /** bits */
  max_key_size: number;
  /** bits */
  min_key_size: number;
  /** 0 = no multicast (additional_slave_SAE_IDs not allowed) */
  max_SAE_ID_count: number;
  status_extension?: Record<string, unknown>;
}

/** One key as delivered by the KME: opaque key_ID plus the key bytes (zeroize with key.wipe()). */
export interface QkdKey {
  keyId: string;
  key: SecretBytes;
}

/** What the caller asks of enc_keys (ETSI GS QKD 014 s6.2). `sizeBits` is per key, in bits. */
export interface KeyRequest {
  number?: number;
  sizeBits?: number;
}

/** Per-call options accepted by every client method. */
export interface CallOptions {
  /** Extra abort signal (e.g. a rotation deadline); aborting it fails the call with KMS_TIMEOUT. */
  signal?: AbortSignal;
  /** Total deadline for this call in ms; the smaller of this and the client's timeoutMs wins. */
  timeoutMs?: number;
  /**
   * false: no BC-05 retry on a new connection after a socket error before any response.
   * Default true. A caller that already retried a possibly-served enc_keys once sets it,
   * so a lost enc_keys is never sent a third time.
   */
  socketRetry?: boolean;
}

/** The three ETSI 014 operations, used in logs and error details. */
export type Etsi014Operation = 'status' | 'enc_keys' | 'dec_keys';
