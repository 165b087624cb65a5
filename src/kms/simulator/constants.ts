/** Constants of the KME simulator: first those the spec fixes, then our choices. */

// --- From ETSI GS QKD 014 V1.1.1 (2019-02) ---
/** URL prefix of every key-delivery endpoint (s5.1, T2). */
export const API_KEYS_PREFIX = '/api/v1/keys/';
/** s6.2: answer of a KME that only serves whole bytes. */
export const MSG_SIZE_MULTIPLE_OF_8 = 'size shall be a multiple of 8';
/** s6.2: an extension_mandatory entry the KME cannot handle. */
export const MSG_EXT_MANDATORY_UNSUPPORTED = 'not all extension_mandatory parameters are supported';
/** s6.4: any named key that cannot be returned (A6, S22, S23). */
export const MSG_KEYS_NOT_FOUND = 'one or more keys specified are not found on KME';

// --- Our choices (etsi014.md s1.8) ---
/** A5/S17: not enough key material; the spec names no code, we answer 503. */
export const MSG_INSUFFICIENT = 'insufficient key material';
/** Largest request body we read, bytes: a full Key IDs request of 128 UUIDs is ~6 KiB. */
export const MAX_BODY_BYTES = 64 * 1024;
/** HTTP keep-alive idle timeout of the server, ms (the gateway's client stays below it, BC-05). */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** Longest key_ID we look up, characters; anything longer cannot be one of ours (UUIDs are 36). */
export const MAX_KEY_ID_LENGTH = 256;
