/** ETSI GS QKD 014 client: public surface. */
export { Etsi014Client, type Etsi014ClientOptions } from './client.js';
export type { KmeStatus, QkdKey, KeyRequest, CallOptions, Etsi014Operation } from './types.js';
export { isValidKeyId, normalizeKeyId, KEY_ID_MAX_LENGTH } from './key-id.js';
export { parseStatus, parseKeyContainer, statusInconsistencies } from './validate.js';
export {
  classifyKmsError,
  isRetryableKmsError,
  extractKmeMessage,
  httpStatusError,
  KME_MESSAGE_MAX,
  type KmsErrorKind,
  type KmsErrorDetails,
} from './error-map.js';
export { spkiSha256 } from './tls.js';
export { DEFAULT_TIMEOUT_MS, DEFAULT_KEEPALIVE_MS, MAX_RESPONSE_BYTES } from './transport.js';
