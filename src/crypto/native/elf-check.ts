/**
 * A pre-flight check of a shared object before dlopen: dlopen maps the file, and a
 * truncated or damaged addon then kills the process with SIGBUS, beyond any try/catch.
 * This reads the ELF header and refuses a file whose program or section headers, or any
 * loadable segment, reach past its end. Not a validator: it catches truncation and junk.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const PT_LOAD = 1;

/** Returns why the file cannot be a loadable 64-bit little-endian ELF object, or null. */
export function elfProblem(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    return `cannot open it: ${(e as Error).message}`;
  }
  try {
    const size = fstatSync(fd).size;
    const read = (off: number, len: number): Buffer | null => {
      if (off < 0 || off + len > size) return null;
      const b = Buffer.alloc(len);
      return readSync(fd, b, 0, len, off) === len ? b : null;
    };
    const h = read(0, 64);
    if (!h || h.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF shared object';
    if (h[4] !== 2 || h[5] !== 1) return 'not a 64-bit little-endian ELF object';
    if (h.readUInt16LE(16) !== 3) return 'not an ELF shared object (e_type is not ET_DYN)';
    const phoff = Number(h.readBigUInt64LE(32));
    const shoff = Number(h.readBigUInt64LE(40));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const shentsize = h.readUInt16LE(58);
    const shnum = h.readUInt16LE(60);
    if (phnum === 0) return 'no program headers: not a loadable object';
    if (phentsize < 56 || phoff + phentsize * phnum > size) return `program headers reach past the end of the file (${size} bytes): truncated?`;
    if (shnum && shoff + shentsize * shnum > size) return `section headers reach past the end of the file (${size} bytes): truncated?`;
    for (let i = 0; i < phnum; i++) {
      const ph = read(phoff + i * phentsize, 56);
      if (!ph) return 'unreadable program header';
      if (ph.readUInt32LE(0) !== PT_LOAD) continue;
      const off = Number(ph.readBigUInt64LE(8));
      const filesz = Number(ph.readBigUInt64LE(32));
      if (off + filesz > size) return `a loadable segment reaches past the end of the file (${size} bytes): truncated?`;
    }
    return null;
  } finally {
    closeSync(fd);
  }
}
