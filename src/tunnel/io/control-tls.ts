/**
 * TLS settings of the control channel (protocol.md s2): TLS 1.3 only, mutual
 * authentication, no session resumption (no tickets; we never offer a session), no
 * early data (Node has none).
 */
import { constants } from 'node:crypto';

export interface ControlTlsMaterial {
  /** Our control certificate and key (PEM). */
  cert: string;
  key: string;
  /** The gateway-control CA (PEM); absent when every peer is pinned. */
  ca?: string;
}

export const CONTROL_TLS_BASE = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  secureOptions: constants.SSL_OP_NO_TICKET,
} as const;
