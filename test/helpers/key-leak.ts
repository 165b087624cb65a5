// Finds key bytes in log text (issue 5 point 6, "BC-39's kind": a key in a log line).
//
// For every key (and, for keys of 32 bytes or more, its first and last 16 bytes, since a
// "key prefix for debugging" is a leak too) it looks for:
//   hex (lower and upper case, also with a space or colon between bytes as util.inspect
//   prints a Buffer, `<Buffer 0a 1b ...>`, or as fingerprints are written);
//   standard base64 and base64url, padded or not, ALSO when the key sits inside a longer
//   encoded blob: the key prefixed by 0, 1 or 2 bytes of anything encodes differently, so
//   each alignment gets its own needle, made of the characters that depend on key bytes
//   only (the uncertain edge characters are dropped);
//   the decimal byte list a Buffer or Uint8Array turns into under JSON.stringify
//   (`{"type":"Buffer","data":[1,2,...]}`, `{"0":1,"1":2,...}`).
// Needles are at least 20 characters (>= 120 bits), so random text cannot match by chance.
import type { Child } from '../../src/cli/demo/children.js';

export interface KeyLeak {
  /** Index of the key in the list given. */
  key: number;
  /** `whole key` or `first 16 bytes` / `last 16 bytes`. */
  part: string;
  /** hex, HEX, base64@0..2, base64url@0..2 (@ = bytes before the key in the blob), byte list. */
  encoding: string;
  /** Name of the text it was found in. */
  source: string;
  /** 1-based line number in that text. */
  line: number;
}

interface Needle {
  text: string;
  key: number;
  part: string;
  encoding: string;
}

const toUrl = (b64: string): string => b64.replace(/\+/g, '-').replace(/\//g, '_');

/**
 * The base64 characters of `bytes` that stay the same whatever precedes it, given
 * `offset` (0, 1 or 2) bytes before it in the encoded blob, and whatever follows it.
 */
export function base64Core(bytes: Uint8Array, offset: 0 | 1 | 2): string {
  const padded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
  // Character i covers bits [6i, 6i+6) of the blob; the key covers [8*offset, 8*(offset+n)).
  const first = Math.ceil((8 * offset) / 6);
  const end = Math.floor((8 * (offset + bytes.length)) / 6);
  return padded.slice(first, end);
}

function needlesOf(key: Uint8Array, index: number): Needle[] {
  const parts: Array<[string, Uint8Array]> = [['whole key', key]];
  if (key.length >= 32) parts.push(['first 16 bytes', key.subarray(0, 16)], ['last 16 bytes', key.subarray(key.length - 16)]);
  const out: Needle[] = [];
  for (const [part, b] of parts) {
    out.push({ text: `,${[...b].join(',')},`, key: index, part, encoding: 'byte list' });
    const hex = Buffer.from(b).toString('hex');
    out.push({ text: hex, key: index, part, encoding: 'hex' }, { text: hex.toUpperCase(), key: index, part, encoding: 'HEX' });
    for (const off of [0, 1, 2] as const) {
      const core = base64Core(b, off);
      out.push({ text: core, key: index, part, encoding: `base64@${off}` });
      if (toUrl(core) !== core) out.push({ text: toUrl(core), key: index, part, encoding: `base64url@${off}` });
    }
  }
  return out;
}

/** Every needle for `keys` (exported for the self-test: text needles are >= 20 characters). */
export function keyNeedles(keys: readonly Uint8Array[]): Needle[] {
  return keys.flatMap((k, i) => needlesOf(k, i));
}

// Runs of the hex/base64/base64url alphabet, of byte-separated hex (reduced to plain lower
// case hex before comparing), and JSON byte arrays (`[1,2,...]`) or
// typed-array objects (`"0":1,"1":2,...`), the latter reduced to their values `,1,2,...,`
// so that a key inside a longer byte array is found as well.
const ENCODED_RUN = /[A-Za-z0-9+/_=-]{20,}/g;
const SEPARATED_HEX_RUN = /(?:[0-9A-Fa-f]{2}[ :]){15,}[0-9A-Fa-f]{2}/g;
// Quotes may be escaped (`\"0\":1`) when the JSON sits inside a string field.
const BYTE_RUN = /\[(?:\d{1,3},){7,}\d{1,3}\]|(?:\\?"\d+\\?":\d{1,3},){7,}\\?"\d+\\?":\d{1,3}/g;
const byteValues = (run: string): string => `,${run.replace(/\\?"\d+\\?":/g, '').replace(/[[\]]/g, '')},`;

/**
 * Every place in `sources` (name -> text) where one of `keys` appears in one of the
 * encodings above. Fast enough for megabytes: only runs of the right alphabet are
 * compared, each distinct run once.
 */
export function findKeyLeaks(keys: readonly Uint8Array[], sources: Record<string, string>): KeyLeak[] {
  const needles = keyNeedles(keys);
  const textNeedles = needles.filter((n) => n.encoding !== 'byte list');
  const byteNeedles = needles.filter((n) => n.encoding === 'byte list');
  const hexNeedles = needles.filter((n) => n.encoding === 'hex').map((n) => ({ ...n, encoding: 'separated hex' }));
  const hits: KeyLeak[] = [];
  for (const [source, text] of Object.entries(sources)) {
    const lines = text.split('\n');
    lines.forEach((lineText, li) => {
      const seen = new Set<string>();
      for (const [re, list] of [[ENCODED_RUN, textNeedles], [BYTE_RUN, byteNeedles], [SEPARATED_HEX_RUN, hexNeedles]] as const) {
        for (const m of lineText.matchAll(re)) {
          if (seen.has(m[0])) continue;
          seen.add(m[0]);
          const run = re === BYTE_RUN ? byteValues(m[0]) : re === SEPARATED_HEX_RUN ? m[0].replace(/[ :]/g, '').toLowerCase() : m[0];
          for (const n of list) {
            if (run.includes(n.text) && !hits.some((h) => h.source === source && h.line === li + 1 && h.key === n.key && h.encoding === n.encoding && h.part === n.part)) {
              hits.push({ key: n.key, part: n.part, encoding: n.encoding, source, line: li + 1 });
            }
          }
        }
      }
    });
  }
  return hits;
}

/** One line per hit, naming where and how, never the key itself. */
export function describeLeaks(hits: readonly KeyLeak[]): string {
  return hits.map((h) => `key #${h.key} (${h.part}) as ${h.encoding} in ${h.source} line ${h.line}`).join('\n');
}

/**
 * Raw stdout and stderr of a child process, kept from its first byte. Attach it in the
 * `started` callback of startLabProcesses (called right after spawn).
 */
export class RawOutput {
  readonly #chunks = new Map<string, Buffer[]>();

  /** Records `c`'s stdout and stderr under `<name>.stdout` / `<name>.stderr`. */
  attach(c: Child): void {
    for (const [stream, s] of [['stdout', c.proc.stdout], ['stderr', c.proc.stderr]] as const) {
      const list: Buffer[] = [];
      this.#chunks.set(`${c.name}.${stream}`, list);
      s?.on('data', (b: Buffer) => list.push(b));
    }
  }

  /** name -> text, for findKeyLeaks. */
  texts(): Record<string, string> {
    return Object.fromEntries([...this.#chunks].map(([k, v]) => [k, Buffer.concat(v).toString('utf8')]));
  }

  /** name -> bytes, for findRawKeys. */
  bytes(): Record<string, Buffer> {
    return Object.fromEntries([...this.#chunks].map(([k, v]) => [k, Buffer.concat(v)]));
  }
}

/**
 * Keys (or their 16-byte halves) written as raw bytes, which no text encoding shows
 * reliably (UTF-8 decoding mangles them). Returns `key #i (part) raw in <name>` strings.
 */
export function findRawKeys(keys: readonly Uint8Array[], outputs: Record<string, Buffer>): string[] {
  const hits: string[] = [];
  keys.forEach((k, i) => {
    const parts: Array<[string, Uint8Array]> = [['whole key', k]];
    if (k.length >= 32) parts.push(['first 16 bytes', k.subarray(0, 16)], ['last 16 bytes', k.subarray(k.length - 16)]);
    for (const [name, out] of Object.entries(outputs)) for (const [part, b] of parts) if (out.indexOf(b) >= 0) hits.push(`key #${i} (${part}) raw in ${name}`);
  });
  return hits;
}

/** What a Child kept of its output (parsed JSON lines re-serialised, plus stderr), for tests that only have the Child. */
export function childLogText(c: Child): Record<string, string> {
  return {
    [`${c.name}.stdout`]: c.lines.map((l) => JSON.stringify(l)).join('\n'),
    [`${c.name}.stderr`]: c.stderr.join('\n'),
  };
}

/**
 * MemoryLogger lines as JSON text, errors with message, stack and own fields, so that an
 * in-process test sees what pino would have printed before redaction (the first fence).
 */
export function memoryLogText(lines: ReadonlyArray<Record<string, unknown>>): string {
  const replacer = (_k: string, v: unknown): unknown => {
    if (v instanceof Error) return { ...v, name: v.name, message: v.message, stack: v.stack, cause: v.cause };
    if (typeof v === 'bigint') return v.toString();
    return v;
  };
  return lines
    .map((l) => {
      try {
        return JSON.stringify(l, replacer);
      } catch {
        // Circular: print repeated objects once, as pino's safe stringify would.
        const seen = new WeakSet<object>();
        return JSON.stringify(l, (k, v: unknown) => {
          const r = replacer(k, v);
          if (typeof r !== 'object' || r === null) return r;
          if (seen.has(r)) return '[Circular]';
          seen.add(r);
          return r;
        });
      }
    })
    .join('\n');
}
