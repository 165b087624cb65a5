/**
 * A small strict JSON parser (RFC 8259) for control frames (protocol.md s2).
 *
 * Why not JSON.parse: it keeps the last of duplicated members (protocol.md s2 requires
 * `bad_message`), it builds objects whose `__proto__` member can reach the prototype
 * chain when later copied (field report BC-35), and it accepts lone surrogates. Here:
 * - input bytes must be valid UTF-8 (no BOM), only the four JSON whitespace characters;
 * - every object is created with `Object.create(null)`, so `__proto__` is an ordinary own member;
 * - a duplicated member (after unescaping: `"a"` and `"\u0061"` are the same) is an error;
 * - nesting depth is bounded (default {@link DEFAULT_MAX_DEPTH});
 * - escapes that yield a lone surrogate are rejected;
 * - with `integersOnly`, numbers must be written as plain integers (no fraction, exponent, `-0`).
 * Every fault throws a {@link WireError} with alert `bad_message`.
 */
import { WireError } from './errors.js';

/** Deep enough for every control frame (depth 2), small enough to bound recursion. Our choice. */
export const DEFAULT_MAX_DEPTH = 16;

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A null-prototype object: no inherited members, `__proto__` is an own key like any other. */
export interface JsonObject {
  [member: string]: JsonValue;
}

export interface StrictJsonOptions {
  /** Maximum nesting of arrays/objects; the top-level value is depth 1. */
  maxDepth?: number;
  /** Reject numbers with a fraction, an exponent, or `-0`. */
  integersOnly?: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const INTEGER_RE = /-?(?:0|[1-9][0-9]*)/y;
// A run of string characters needing no attention: not `"`, `\`, a control character or a surrogate.
const PLAIN_RUN_RE = /[^"\\\u0000-\u001f\ud800-\udfff]*/y;

/** True for a plain (null-prototype or Object) object produced by this parser. */
export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses one JSON text. `input` is UTF-8 bytes or an already-decoded string.
 * Returns the value; objects have a null prototype. Throws WireError (`json_utf8`,
 * `json_syntax`, `json_depth`, `json_duplicate`; alert `bad_message`).
 */
export function parseStrictJson(input: Uint8Array | string, opts: StrictJsonOptions = {}): JsonValue {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = utf8.decode(input);
    } catch {
      throw new WireError('json_utf8', 'JSON text is not valid UTF-8');
    }
  }
  return new Parser(text, opts.maxDepth ?? DEFAULT_MAX_DEPTH, opts.integersOnly ?? false).parseDocument();
}

class Parser {
  #pos = 0;
  constructor(
    private readonly s: string,
    private readonly maxDepth: number,
    private readonly integersOnly: boolean,
  ) {}

  parseDocument(): JsonValue {
    this.#ws();
    const v = this.#value(1);
    this.#ws();
    if (this.#pos !== this.s.length) this.#fail('trailing characters');
    return v;
  }

  #fail(what: string): never {
    throw new WireError('json_syntax', `invalid JSON at offset ${this.#pos}: ${what}`);
  }

  #ws(): void {
    const s = this.s;
    let p = this.#pos;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) p++;
      else break;
    }
    this.#pos = p;
  }

  #value(depth: number): JsonValue {
    const c = this.s.charCodeAt(this.#pos);
    switch (c) {
      case 0x7b /* { */:
        return this.#object(depth);
      case 0x5b /* [ */:
        return this.#array(depth);
      case 0x22 /* " */:
        return this.#string();
      case 0x74 /* t */:
        return this.#literal('true', true);
      case 0x66 /* f */:
        return this.#literal('false', false);
      case 0x6e /* n */:
        return this.#literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.#number();
        return this.#fail(Number.isNaN(c) ? 'unexpected end' : 'unexpected character');
    }
  }

  #literal<T extends JsonValue>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.#pos)) this.#fail('bad literal');
    this.#pos += word.length;
    return v;
  }

  #number(): number {
    const re = this.integersOnly ? INTEGER_RE : NUMBER_RE;
    re.lastIndex = this.#pos;
    const m = re.exec(this.s);
    if (!m || m[0].length === 0 || m[0] === '-') this.#fail('bad number');
    const end = this.#pos + m[0].length;
    if (this.integersOnly) {
      const next = this.s.charCodeAt(end);
      if (next === 0x2e || next === 0x65 || next === 0x45) this.#fail('number is not a plain integer');
      if (m[0] === '-0') this.#fail('-0 is not an integer');
    }
    const n = Number(m[0]);
    if (!Number.isFinite(n)) this.#fail('number out of range');
    this.#pos = end;
    return n;
  }

  #string(): string {
    const s = this.s;
    this.#pos++; // opening quote
    let out = '';
    for (;;) {
      PLAIN_RUN_RE.lastIndex = this.#pos;
      const run = PLAIN_RUN_RE.exec(s)![0];
      out += run;
      this.#pos += run.length;
      const c = s.charCodeAt(this.#pos);
      if (c === 0x22) {
        this.#pos++;
        return out;
      }
      if (c === 0x5c) {
        out += this.#escape();
        continue;
      }
      if (c >= 0xd800 && c <= 0xdbff) {
        // Only reachable for string input: UTF-8 decoding never yields surrogates.
        const d = s.charCodeAt(this.#pos + 1);
        if (!(d >= 0xdc00 && d <= 0xdfff)) this.#fail('lone surrogate');
        out += s.slice(this.#pos, this.#pos + 2);
        this.#pos += 2;
        continue;
      }
      if (Number.isNaN(c)) this.#fail('unterminated string');
      this.#fail(c < 0x20 ? 'control character in string' : 'lone surrogate');
    }
  }

  #escape(): string {
    const s = this.s;
    const e = s.charCodeAt(this.#pos + 1);
    this.#pos += 2;
    switch (e) {
      case 0x22: return '"';
      case 0x5c: return '\\';
      case 0x2f: return '/';
      case 0x62: return '\b';
      case 0x66: return '\f';
      case 0x6e: return '\n';
      case 0x72: return '\r';
      case 0x74: return '\t';
      case 0x75: {
        const hi = this.#hex4();
        if (hi >= 0xdc00 && hi <= 0xdfff) this.#fail('lone low surrogate escape');
        if (hi < 0xd800 || hi > 0xdbff) return String.fromCharCode(hi);
        if (s.charCodeAt(this.#pos) !== 0x5c || s.charCodeAt(this.#pos + 1) !== 0x75) this.#fail('lone high surrogate escape');
        this.#pos += 2;
        const lo = this.#hex4();
        if (lo < 0xdc00 || lo > 0xdfff) this.#fail('lone high surrogate escape');
        return String.fromCharCode(hi, lo);
      }
      default:
        this.#pos -= 1;
        return this.#fail('bad escape');
    }
  }

  #hex4(): number {
    const h = this.s.slice(this.#pos, this.#pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.#fail('bad \\u escape');
    this.#pos += 4;
    return parseInt(h, 16);
  }

  #enter(depth: number): void {
    if (depth > this.maxDepth) throw new WireError('json_depth', `JSON nesting deeper than ${this.maxDepth}`);
  }

  #array(depth: number): JsonValue[] {
    this.#enter(depth);
    this.#pos++;
    const out: JsonValue[] = [];
    this.#ws();
    if (this.s.charCodeAt(this.#pos) === 0x5d) {
      this.#pos++;
      return out;
    }
    for (;;) {
      this.#ws();
      out.push(this.#value(depth + 1));
      this.#ws();
      const c = this.s.charCodeAt(this.#pos++);
      if (c === 0x5d) return out;
      if (c !== 0x2c) {
        this.#pos--;
        this.#fail("expected ',' or ']'");
      }
    }
  }

  #object(depth: number): JsonObject {
    this.#enter(depth);
    this.#pos++;
    const out = Object.create(null) as JsonObject;
    this.#ws();
    if (this.s.charCodeAt(this.#pos) === 0x7d) {
      this.#pos++;
      return out;
    }
    for (;;) {
      this.#ws();
      if (this.s.charCodeAt(this.#pos) !== 0x22) this.#fail('expected member name');
      const keyAt = this.#pos;
      const key = this.#string();
      if (Object.hasOwn(out, key)) {
        throw new WireError('json_duplicate', `duplicate JSON member at offset ${keyAt}`, 'bad_message', { member: key.slice(0, 64) });
      }
      this.#ws();
      if (this.s.charCodeAt(this.#pos) !== 0x3a) this.#fail("expected ':'");
      this.#pos++;
      this.#ws();
      // A null-prototype object: assignment creates an own property even for "__proto__".
      out[key] = this.#value(depth + 1);
      this.#ws();
      const c = this.s.charCodeAt(this.#pos++);
      if (c === 0x7d) return out;
      if (c !== 0x2c) {
        this.#pos--;
        this.#fail("expected ',' or '}'");
      }
    }
  }
}
