/** Byte helpers: big-endian integers, lp16, strict base64 forms, constant-time compare. */
import { timingSafeEqual } from 'node:crypto';
import { ErrorCodes, QkdgwError } from '../errors.js';

export const u8 = (n: number): Buffer => Buffer.from([n & 0xff]);

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** u64 big-endian from a bigint or a safe integer. */
export function u64(n: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** `lp16(x) = u16(len(x)) || x` (protocol.md conventions). Throws CRYPTO_LENGTH if len > 65535. */
export function lp16(x: Uint8Array): Buffer {
  if (x.length > 0xffff) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `lp16 input too long: ${x.length} bytes`);
  return Buffer.concat([u16(x.length), x]);
}

/** Constant-time equality; false (not a throw) when lengths differ. */
export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

const B64URL_RE = /^[A-Za-z0-9_-]*$/;

/** base64url without padding (protocol.md s2). */
export const toB64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

/**
 * Strict base64url decode: alphabet `^[A-Za-z0-9_-]*$`, no padding, canonical (re-encodes
 * to the same text) and, when given, exactly `len` bytes. Returns null on any violation.
 */
export function fromB64uStrict(s: string, len?: number): Buffer | null {
  if (typeof s !== 'string' || !B64URL_RE.test(s) || s.length % 4 === 1) return null;
  const b = Buffer.from(s, 'base64url');
  if (b.toString('base64url') !== s) return null;
  if (len !== undefined && b.length !== len) return null;
  return b;
}

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict RFC 4648 s4 standard base64 with padding, canonical. Node's Buffer.from(s,'base64')
 * silently skips bad characters, so we check the text first (field report BC-03).
 * Returns null on any violation.
 */
export function fromB64Strict(s: string): Buffer | null {
  if (typeof s !== 'string' || !B64_RE.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) return null;
  return b;
}

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Lexicographic byte comparison; a proper prefix is smaller (protocol.md s1). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
