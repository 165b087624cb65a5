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
  type KmeAdminOptions,
  type ExhaustionMode,
  type ResolvedKmeSimConfig,
} from './options.js';
export { type KmeSimControl, type KmeSimState, type KmeLinkInput, type InjectedFault } from './control.js';
export { FAULT_DEFAULTS, MSG_INJECTED_503, STALL_CONTENT_LENGTH, type KmeFaults, type KmeFaultOptions } from './faults.js';
export { QUIRK_DEFAULTS, QUIRK_NAMES, MSG_KEY_NOT_FOUND_404, type KmeQuirks, type KmeQuirkOptions } from './quirks.js';
export { startKmeSimAdmin, ADMIN_PREFIX, type KmeAdminServer, type KmeAdminServerOptions } from './admin-server.js';
export { isLoopbackHost } from '../../util/loopback.js';
export { KEY_LEDGER_ENV, MemoryKeyLedger, FileKeyLedger, keyLedgerFromEnv, readKeyLedgerDir, type KeyLedger } from './key-ledger.js';
export type { LinkSettings } from './link.js';
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
