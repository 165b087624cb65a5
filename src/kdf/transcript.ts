/**
 * The handshake transcript hash TH (protocol.md s3.1).
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, QkdgwError } from '../errors.js';
import { lp16, u16, u64, u8 } from '../util/bytes.js';
import { TRANSCRIPT_LABEL } from './labels.js';

export interface TranscriptInput {
  suite: number;
  epoch: number;
  mode: number;
  /** Initiator and responder identities (SAE IDs), as ASCII bytes. */
  idI: string;
  idR: string;
  /** key_ID strings exactly as carried in INIT (0 or 1 of them). */
  keyIds: string[];
  nI: Uint8Array; // 32
  nR: Uint8Array; // 32
  pkXI: Uint8Array; // 32
  pkXR: Uint8Array; // 32
  ekM: Uint8Array; // 1,184
  ctM: Uint8Array; // 1,088
  /** TLS exporter of the control session, 32 bytes. */
  exporter: Uint8Array;
}

function need(name: string, b: Uint8Array, len: number): void {
  if (b.length !== len) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `${name} must be ${len} bytes, got ${b.length}`);
}

/** The TH preimage (2,533 bytes for the s3.5 vector). Throws CRYPTO_LENGTH on a wrong field length. */
export function transcriptPreimage(t: TranscriptInput): Buffer {
  need('N_I', t.nI, 32);
  need('N_R', t.nR, 32);
  need('pkX_I', t.pkXI, 32);
  need('pkX_R', t.pkXR, 32);
  need('exporter', t.exporter, 32);
  if (t.keyIds.length > 255) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'too many key_IDs');
  return Buffer.concat([
    Buffer.from(TRANSCRIPT_LABEL, 'ascii'),
    u16(t.suite),
    u64(t.epoch),
    u8(t.mode),
    lp16(Buffer.from(t.idI, 'utf8')),
    lp16(Buffer.from(t.idR, 'utf8')),
    u8(t.keyIds.length),
    ...t.keyIds.map((k) => lp16(Buffer.from(k, 'utf8'))),
    t.nI,
    t.nR,
    t.pkXI,
    t.pkXR,
    lp16(t.ekM),
    lp16(t.ctM),
    lp16(t.exporter),
  ]);
}

/** TH = SHA-256(preimage), 32 bytes (protocol.md s3.1). */
export function transcriptHash(t: TranscriptInput): Buffer {
  return createHash('sha256').update(transcriptPreimage(t)).digest();
}
