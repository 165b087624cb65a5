/**
 * Every label of QGW-KDF-1 (protocol.md s3.1, s3.2, s5.1) in one place, so that a
 * reimplementation can check them against the spec line by line.
 */
export const TRANSCRIPT_LABEL = 'QGW-v1 transcript';
/** Prefix of every Expand-Label label (protocol.md s3.2). */
export const LABEL_PREFIX = 'qgw1 ';

export const Labels = {
  keyI2R: 'key i2r',
  keyR2I: 'key r2i',
  ivI2R: 'iv i2r',
  ivR2I: 'iv r2i',
  flowI2R: 'flow i2r',
  flowR2I: 'flow r2i',
  finishedI: 'finished i',
  finishedR: 'finished r',
  chain: 'chain',
} as const;

/** Flow-key labels (protocol.md s5.1): they already carry the prefix and take flow_id as context. */
export const FLOW_KEY_LABEL = 'qgw1 flow key';
export const FLOW_IV_LABEL = 'qgw1 flow iv';
