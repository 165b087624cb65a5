/**
 * The bundled ETSI GS QKD 014 V1.1.1 KME simulator: two KMEs on one simulated QKD link.
 * See etsi014.md s2 for the checklist items (S*) it implements.
 */
export {
  startKmeSimulator,
  type KmeSimulator,
  type KmeSimStats,
  type KmeEndpointInfo,
  type DeliveryRecord,
} from './server.js';
export {
  resolveKmeSimConfig,
  LINK_DEFAULTS,
  type KmeSimOptions,
  type KmeSimConfig,
  type KmeLinkOptions,
  type KmeEndpointOptions,
  type ExhaustionMode,
  type ResolvedKmeSimConfig,
} from './options.js';
export type { DeliverySide } from './handlers.js';
export {
  API_KEYS_PREFIX,
  MSG_SIZE_MULTIPLE_OF_8,
  MSG_EXT_MANDATORY_UNSUPPORTED,
  MSG_KEYS_NOT_FOUND,
  MSG_INSUFFICIENT,
  KEEP_ALIVE_TIMEOUT_MS,
} from './constants.js';
export { SAE_URI_PREFIX } from './identity.js';
