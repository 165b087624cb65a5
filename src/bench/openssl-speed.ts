/**
 * The reference figure of `npm run bench:crypto`: OpenSSL's own AES-256-GCM speed on this
 * machine, `openssl speed -elapsed -aead -evp aes-256-gcm -bytes N -seconds S`.
 *
 * `-aead` runs the TLS-like sequence per record (set IV, 13-byte AAD, encrypt, final),
 * the closest OpenSSL has to one sealed carrier record; `-elapsed` divides by wall
 * time, as our own measurements do. OpenSSL 3.0 takes whole seconds only (`-seconds
 * +int`; "0.5" is refused as an octal number), so callers round up to >= 1.
 */
import { execFile } from 'node:child_process';

/** One parsed `openssl speed` run. */
export type OpensslSpeed =
  | { ok: true; bytes: number; bytesPerSec: number; packetsPerSec: number }
  | { ok: false; reason: string };

/** What `openssl version` says, or why there is no CLI. */
export type OpensslVersion = { ok: true; version: string } | { ok: false; reason: string };

/** Shown whenever the CLI is missing: installing it is the operator's call. */
export const OPENSSL_MISSING = 'openssl CLI not found on PATH (install it with `apt-get install openssl`)';

/** Command line arguments after `openssl` for one record size (bytes) and duration (whole seconds >= 1). */
export function opensslSpeedArgs(bytes: number, seconds: number): string[] {
  return ['speed', '-elapsed', '-aead', '-evp', 'aes-256-gcm', '-bytes', String(bytes), '-seconds', String(Math.max(1, Math.ceil(seconds)))];
}

/**
 * Parses the table of `openssl speed` (stdout):
 * ```
 * type           1400 bytes
 * AES-256-GCM    1392067.60k
 * ```
 * Figures with a `k` are 1000s of bytes per second; OpenSSL prints small ones (<= 10000
 * bytes/s) without it, in bytes per second. The `type` header must name `bytes`, so a
 * table for another size is not taken for this one. packetsPerSec = bytesPerSec / bytes.
 * Never throws: a missing or garbled line gives `{ ok: false, reason }`.
 */
export function parseOpensslSpeed(stdout: string, bytes: number): OpensslSpeed {
  const header = /^type\s+(\d+) bytes\s*$/m.exec(stdout);
  if (!header) return { ok: false, reason: 'no "type ... bytes" header in openssl speed output' };
  if (Number(header[1]) !== bytes) return { ok: false, reason: `openssl speed measured ${header[1]} bytes, expected ${bytes}` };
  const line = /^AES-256-GCM[ \t]+(\S+)[ \t]*$/m.exec(stdout);
  if (!line) return { ok: false, reason: 'no AES-256-GCM line in openssl speed output' };
  const m = /^([0-9]+(?:\.[0-9]+)?)(k?)$/.exec(line[1]!);
  if (!m) return { ok: false, reason: `garbled AES-256-GCM figure ${JSON.stringify(line[1])} in openssl speed output` };
  const bytesPerSec = Number(m[1]) * (m[2] === 'k' ? 1000 : 1);
  if (!(bytesPerSec > 0) || !Number.isFinite(bytesPerSec)) return { ok: false, reason: `AES-256-GCM figure ${JSON.stringify(line[1])} is not a positive rate` };
  return { ok: true, bytes, bytesPerSec, packetsPerSec: bytesPerSec / bytes };
}

/** Runs `openssl` with `args`; resolves stdout, or rejects with the spawn error (code ENOENT when missing). */
export type OpensslExec = (args: string[], timeoutMs: number) => Promise<string>;

/** The real CLI on PATH. */
export const execOpenssl: OpensslExec = (args, timeoutMs) =>
  new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: timeoutMs, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const detail = String(stderr || '').trim().split('\n')[0];
        if (detail && !(err as NodeJS.ErrnoException).code) err.message = `${err.message.split('\n')[0]}: ${detail}`;
        reject(err);
      } else resolve(stdout);
    });
  });

function failure(e: unknown): { ok: false; reason: string } {
  const err = e as NodeJS.ErrnoException & { killed?: boolean };
  if (err?.code === 'ENOENT') return { ok: false, reason: OPENSSL_MISSING };
  if (err?.killed) return { ok: false, reason: 'openssl speed timed out' };
  return { ok: false, reason: `openssl failed: ${String(err?.message ?? e).split('\n')[0]}` };
}

/**
 * Runs one `openssl speed` for `bytes` per record and `seconds` (rounded up to whole
 * seconds >= 1) and parses it. Sequential by design: the caller awaits it before
 * measuring anything else, so OpenSSL never shares the cores with our loops.
 * Never rejects; a missing CLI gives {@link OPENSSL_MISSING} as the reason.
 */
export async function runOpensslSpeed(bytes: number, seconds: number, exec: OpensslExec = execOpenssl): Promise<OpensslSpeed> {
  const args = opensslSpeedArgs(bytes, seconds);
  let out: string;
  try {
    // Generous: openssl runs the whole -seconds, plus start-up on a loaded machine.
    out = await exec(args, (Math.max(1, Math.ceil(seconds)) + 30) * 1000);
  } catch (e) {
    return failure(e);
  }
  return parseOpensslSpeed(out, bytes);
}

/** `openssl version` (first line, e.g. "OpenSSL 3.0.19 27 Jan 2026 (Library: ...)"); never rejects. */
export async function opensslVersion(exec: OpensslExec = execOpenssl): Promise<OpensslVersion> {
  try {
    const v = (await exec(['version'], 10_000)).trim().split('\n')[0] ?? '';
    return v ? { ok: true, version: v } : { ok: false, reason: 'openssl version printed nothing' };
  } catch (e) {
    return failure(e);
  }
}
