/**
 * ALERT codes of the control channel (protocol.md s2) and how a session treats them.
 *
 * Fatal: the sender closes the connection after sending it. Handshake-only: the handshake
 * named by `epoch` is aborted and its number burned; the connection stays. `bad_tag` is
 * in both lists: fatal when it concerns `tag_I` (the responder sends it, protocol.md s3.4),
 * handshake-only when it concerns `tag_R` (the initiator sends it). Because the receiver
 * of an ALERT knows its own role, it decides with {@link isFatalAlert}: a `bad_tag` sent
 * by the responder (received by the initiator) concerns `tag_I`.
 */
export const ALERT_CODES = [
  'unsupported',
  'bad_message',
  'unexpected_message',
  'bad_version',
  'bad_identity',
  'no_common_suite',
  'bad_epoch',
  'internal',
  'bad_tag',
  'policy_refused',
  'key_unavailable',
  'key_reused',
  'handshake_timeout',
] as const;

export type AlertCode = (typeof ALERT_CODES)[number];

/** Codes after which the sender closes the connection (`bad_tag` only when about tag_I). */
export const FATAL_ALERTS: ReadonlySet<AlertCode> = new Set<AlertCode>([
  'unsupported',
  'bad_message',
  'unexpected_message',
  'bad_version',
  'bad_identity',
  'no_common_suite',
  'bad_epoch',
  'internal',
  'bad_tag',
]);

/** Codes that abort only the handshake named by `epoch` (`bad_tag` only when about tag_R). */
export const HANDSHAKE_ONLY_ALERTS: ReadonlySet<AlertCode> = new Set<AlertCode>([
  'policy_refused',
  'key_unavailable',
  'key_reused',
  'bad_tag',
  'handshake_timeout',
]);

/** Codes whose ALERT MUST carry `epoch` (protocol.md s2 table: handshake-only, bad_tag, bad_epoch). */
export const ALERTS_REQUIRING_EPOCH: ReadonlySet<AlertCode> = new Set<AlertCode>([...HANDSHAKE_ONLY_ALERTS, 'bad_epoch']);

const CODE_SET: ReadonlySet<string> = new Set<string>(ALERT_CODES);

export function isAlertCode(s: unknown): s is AlertCode {
  return typeof s === 'string' && CODE_SET.has(s);
}

/**
 * True when `code` is fatal. `concernsTagI` matters only for `bad_tag`: pass true when the
 * ALERT is about `tag_I`, i.e. the responder sent it (a receiving initiator passes true, a
 * receiving responder false; a sender passes whether it is the responder).
 */
export function isFatalAlert(code: AlertCode, ctx: { concernsTagI: boolean }): boolean {
  if (code === 'bad_tag') return ctx.concernsTagI;
  return FATAL_ALERTS.has(code);
}
