/**
 * pino JSON-lines logging for the daemon and the KME simulator.
 *
 * Redaction is the second fence (issue 5 point 6). The first is that no code path logs
 * key bytes, which test/e2e/no-key-in-logs.test.ts checks against every key the
 * simulator issued. Should a call ever try, {@link scrubLogValue} censors, at any depth
 * of the logged object and of child-logger bindings: every field whose name carries
 * secrets ({@link SECRET_FIELD_NAMES}), every binary value (Buffer, typed array,
 * ArrayBuffer: never meant for a log line, and pino would print its bytes), KeyObjects
 * and PEM private keys. It cannot see inside free text: `msg` strings are the first
 * fence's job.
 *
 * Why a walk in `formatters` and not pino's `redact` paths: a path has a fixed depth
 * (`*.key` is one level; an error's details or a KME answer nest deeper), and with
 * pino 10's @pinojs/redact 0.4 an intermediate wildcard (`*.*.key`) makes the log call
 * itself throw on any logged Buffer, while a leading one (`*.key`) turns a top-level
 * Buffer into "[unable to serialize ...]".
 */
import { KeyObject } from 'node:crypto';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Logger } from '../util/logger.js';

/** What a censored value is replaced by. */
export const REDACTED = '[REDACTED]';

/**
 * Field names that carry key material or credentials anywhere in the code (SecretBytes
 * and key Buffers: key, kQkd, prk, okm/ikm, ss/ssM/ssX, dk, exporter, flowSecret, chain,
 * finished*; TLS and config: key, privateKey, passphrase; KME answers: keys[*].key),
 * plus the usual credential names. Matched after lower-casing and removing `_` and `-`,
 * so `private_key`, `privateKey` and `PRIVATE-KEY` are one name.
 */
export const SECRET_FIELD_NAMES: readonly string[] = [
  'key', 'keys', 'secret', 'secrets', 'secretkey', 'privatekey', 'sk', 'dk', 'seed',
  'password', 'passphrase', 'psk', 'prk', 'okm', 'ikm', 'kqkd', 'ss', 'ssm', 'ssx',
  'sharedsecret', 'flowsecret', 'exporter', 'chain', 'finished', 'finishedi', 'finishedr',
  'sessionkey', 'traffickey', 'masterkey', 'mastersecret', 'keymaterial', 'tlskey',
  'clientkey', 'authorization', 'cookie',
];

const SECRET_NAMES = new Set(SECRET_FIELD_NAMES);
const normName = (name: string): string => name.toLowerCase().replace(/[-_]/g, '');

/** True when a field of this name is censored whatever its value. */
export function isSecretFieldName(name: string): boolean {
  return SECRET_NAMES.has(normName(name));
}

/** Objects nested deeper than this are cut (a log line is not a data dump). */
const MAX_DEPTH = 12;
const errSerializer = pino.stdSerializers.err as (e: Error) => Record<string, unknown>;

/**
 * A copy of `value` fit for a log line: secret-named fields (at any depth) become
 * {@link REDACTED}, binary values `[binary N bytes]`, KeyObjects `[KeyObject <type>]`,
 * strings holding a PEM private key {@link REDACTED}, errors pino's err shape (type,
 * message, stack, own fields, cause) scrubbed in turn, circular references
 * `[Circular]`. Objects with `toJSON` are scrubbed as what they serialise to. Never throws
 * on odd input; never changes `value`.
 */
export function scrubLogValue(value: unknown): unknown {
  return scrub(value, 0, []);
}

function scrub(v: unknown, depth: number, stack: object[]): unknown {
  if (typeof v === 'string') return v.includes('PRIVATE KEY-----') ? REDACTED : v;
  if (v === null || typeof v !== 'object') return v;
  if (ArrayBuffer.isView(v)) return `[binary ${v.byteLength} bytes]`;
  if (v instanceof ArrayBuffer || v instanceof SharedArrayBuffer) return `[binary ${v.byteLength} bytes]`;
  if (v instanceof KeyObject) return `[KeyObject ${v.type}]`;
  if (stack.includes(v)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  stack.push(v);
  try {
    if (v instanceof Error) return scrubFields(errSerializer(v), depth, stack);
    if (Array.isArray(v)) return v.map((x) => scrub(x, depth + 1, stack));
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return scrub(toJSON.call(v), depth + 1, stack);
    return scrubFields(v as Record<string, unknown>, depth, stack);
  } catch {
    // A getter or toJSON that throws: say so rather than lose the whole line.
    return '[unserialisable]';
  } finally {
    stack.pop();
  }
}

function scrubFields(o: Record<string, unknown>, depth: number, stack: object[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) out[k] = isSecretFieldName(k) ? REDACTED : scrub(o[k], depth + 1, stack);
  return out;
}

/**
 * Scrubs a log call's object, except `err`, which pino hands to its err serializer
 * afterwards (a plain object there would be re-serialised as an error of type Object).
 */
function scrubLogObject(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) out[k] = k === 'err' ? o[k] : isSecretFieldName(k) ? REDACTED : scrub(o[k], 1, [o]);
  return out;
}

type Pino = PinoLogger<string, boolean>;

/**
 * Scrubs the bindings of every child, grandchild, ...: pino applies `formatters.bindings`
 * to the root's base only, so `child` is wrapped on each instance it returns.
 */
function fenceChildren(l: Pino, pinoChild: Pino['child'] = l.child): Pino {
  // pino's own child(), called on this instance: the override is inherited by children
  // (Object.create), so each level must bind its own `this`.
  const child = (bindings: Record<string, unknown>, options?: object): Pino =>
    fenceChildren(pinoChild.call(l, scrubFields(bindings, 0, [bindings]), options) as Pino, pinoChild);
  l.child = child as unknown as Pino['child'];
  return l;
}

/**
 * A pino logger writing JSON lines to `dest` (stdout by default, synchronous), every
 * line and the bindings of every child passed through {@link scrubLogValue}.
 * @param opts.level pino level name (`trace` ... `fatal`)
 * @param opts.name the `name` field of every line, e.g. `qkdgw:gw-a`
 */
export function makeLogger(opts: { level: string; name: string; dest?: DestinationStream }): Logger {
  const l = pino(
    {
      level: opts.level,
      name: opts.name,
      base: { pid: process.pid },
      formatters: { log: scrubLogObject },
      serializers: { err: scrubLogValue },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.dest ?? pino.destination({ fd: 1, sync: true }),
  );
  return fenceChildren(l as unknown as Pino) as unknown as Logger;
}
