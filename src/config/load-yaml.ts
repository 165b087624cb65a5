/**
 * Generic strict YAML loader: file -> YAML 1.2 (core schema) AST -> plain JS value ->
 * JSON Schema (draft 2020-12) validation with defaults applied, every problem reported
 * with `file:line:col` and a key path (architecture.md habit 7; field reports BC-33, BC-35).
 *
 * Rules beyond YAML itself, each because a plain parser gets it silently wrong:
 * - duplicate keys are errors (BC-35a; `parseDocument` collects them, it does not throw);
 * - an empty or comment-only file is `QKDGW_E_CONFIG_EMPTY` (BC-35b);
 * - `__proto__`, `constructor`, `prototype` keys are refused anywhere (BC-35d);
 * - integers must be plain decimal digits (BC-33): a leading zero (`0600`: YAML 1.2 reads
 *   decimal 600, not the octal mode meant), hex (`0x10`) and octal (`0o20`) are refused,
 *   octal only accepted in a field marked `x-octal` (file modes); a field that wants text
 *   but got such a number is told what YAML made of it;
 * - integers are parsed as BigInt and refused beyond 2^53-1 instead of being rounded (BC-33);
 * - float or exponent notation (`1e9`, `5.0`) is refused where the schema wants an integer (BC-33);
 * - aliases are limited (alias bombs), explicit tags other than `!!str` are refused.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { ErrorCodes } from '../errors.js';
import { ConfigError, formatPath, type ConfigIssue } from './issues.js';

/** Key path segments: strings for mapping keys, numbers for sequence indexes. */
export type PathSegments = readonly (string | number)[];

/** 1-based position in the file. */
export interface Position {
  line: number;
  col: number;
}

/** A JSON Schema object (draft 2020-12). */
export type JsonSchema = Record<string, unknown>;

export interface LoadYamlOptions {
  /** Most alias dereferences allowed in one document (default 50); more is treated as an alias bomb. */
  maxAliasCount?: number;
  /** Largest accepted file in bytes (default 1 MiB). */
  maxBytes?: number;
}

/** A validated document plus the means to point at its fields. */
export interface LoadedYaml {
  /** Absolute path of the file. */
  file: string;
  /** Folder of the file: relative paths in the document resolve against it. */
  dir: string;
  /** The value after schema validation, with the schema's `default`s filled in. Mutable, not frozen. */
  data: unknown;
  /** Position of the field at `path`, or of its nearest ancestor written in the file. */
  position(path: PathSegments): Position;
  /** True when `path` was written in the file (as opposed to filled in from a default). */
  written(path: PathSegments): boolean;
  /** A ConfigIssue at `path`, positioned by {@link LoadedYaml.position}. */
  issue(path: PathSegments, message: string): ConfigIssue;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_DEPTH = 64;
const DEFAULT_MAX_ALIASES = 50;
const DEFAULT_MAX_BYTES = 1024 * 1024;
const STR_TAG = 'tag:yaml.org,2002:str';

interface NodeInfo {
  /** The value node (null when the value is empty, e.g. `key:` with nothing after it). */
  value: Node | null;
  /** The key node when the value sits in a mapping. */
  key: Node | null;
}

const keyOf = (segs: PathSegments): string => JSON.stringify(segs);

/**
 * Reads and validates a YAML file.
 * @param file path of the file (made absolute).
 * @param schema JSON Schema 2020-12 the document must satisfy; `default`s are applied.
 * @throws ConfigError `QKDGW_E_CONFIG_READ` (unreadable, not UTF-8, over `maxBytes`),
 *   `QKDGW_E_CONFIG_EMPTY` (no content), `QKDGW_E_CONFIG_INVALID` (all other problems, all listed).
 */
/**
 * Reads at most `max + 1` bytes of a regular file: a device (`/dev/zero`), a FIFO or a huge
 * file must not hang or bloat a running daemon on reload. Throws ENOTREG-coded errors for
 * anything that is not a regular file.
 */
function readBounded(path: string, max: number): Buffer {
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' });
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === buf.length) break;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export function loadYamlFile(file: string, schema: JsonSchema, opts: LoadYamlOptions = {}): LoadedYaml {
  const abs = resolvePath(file);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let bytes: Buffer;
  try {
    bytes = readBounded(abs, maxBytes);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError(
      ErrorCodes.CONFIG_READ,
      abs,
      [{ file: abs, line: 1, col: 1, path: '(root)', message: `cannot read the file (${err.code ?? err.message})` }],
      { cause: e },
    );
  }
  if (bytes.length > maxBytes) {
    throw new ConfigError(ErrorCodes.CONFIG_READ, abs, [
      { file: abs, line: 1, col: 1, path: '(root)', message: `file is larger than the ${maxBytes} bytes accepted` },
    ]);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw new ConfigError(
      ErrorCodes.CONFIG_READ,
      abs,
      [{ file: abs, line: 1, col: 1, path: '(root)', message: 'file is not valid UTF-8 text' }],
      { cause: e },
    );
  }
  return parseYamlText(text, abs, schema, opts);
}

/**
 * Same as {@link loadYamlFile} for text already in memory; `file` is used for messages
 * and as the base for {@link LoadedYaml.dir}.
 */
export function parseYamlText(text: string, file: string, schema: JsonSchema, opts: LoadYamlOptions = {}): LoadedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    uniqueKeys: true,
    schema: 'core',
    version: '1.2',
    intAsBigInt: true,
    strict: true,
    prettyErrors: false,
    merge: false,
  });
  const issues: ConfigIssue[] = [];
  const at = (offset: number): Position => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, col: p.col };
  };
  const add = (offset: number, segs: PathSegments, message: string): void => {
    issues.push({ file, ...at(offset), path: formatPath(segs), message });
  };

  const contents = doc.contents as Node | null;
  const emptyScalar = isScalar(contents) && contents.value === null && contents.range?.[0] === contents.range?.[1];
  if ((contents === null || emptyScalar) && doc.errors.length === 0) {
    throw new ConfigError(ErrorCodes.CONFIG_EMPTY, file, [
      { file, line: 1, col: 1, path: '(root)', message: 'configuration is empty (no settings, only whitespace or comments)' },
    ]);
  }

  const where = new Map<string, NodeInfo>();
  /** Paths the loader already reported; schema errors at or below them would only repeat the point. */
  const reported: PathSegments[] = [];
  /** Pointers (ajv instancePath form) of numbers written in float or exponent notation. */
  const floats = new Set<string>();
  /** Pointers of integers written in hex (0x) or octal (0o) notation, and how. */
  const radix = new Map<string, string>();
  const duplicateOffsets = new Set<number>();
  const maxAliases = opts.maxAliasCount ?? DEFAULT_MAX_ALIASES;
  let aliasCount = 0;
  let aliasBomb = false;

  const flag = (node: Node | null, segs: PathSegments, message: string): void => {
    add(node?.range?.[0] ?? 0, segs, message);
    reported.push([...segs]);
  };

  const build = (node: Node | null, segs: (string | number)[], depth: number): unknown => {
    if (aliasBomb) return null;
    if (depth > MAX_DEPTH) {
      flag(node, segs, `nesting deeper than ${MAX_DEPTH} levels`);
      return null;
    }
    if (node === null) return null;
    if (isAlias(node)) {
      aliasCount += 1;
      if (aliasCount > maxAliases) {
        aliasBomb = true;
        flag(node, segs, `more than ${maxAliases} alias expansions: refusing a possible alias bomb (use fewer *aliases)`);
        return null;
      }
      const target = node.resolve(doc as Document);
      if (target === undefined) {
        flag(node, segs, `alias *${node.source} refers to no anchor`);
        return null;
      }
      return build(target as Node, segs, depth + 1);
    }
    if (node.tag !== undefined && node.tag !== STR_TAG) {
      flag(node, segs, `YAML tag ${shortTag(node.tag)} is not accepted (only !!str); write the value as plain YAML`);
      return null;
    }
    if (isScalar(node)) return scalarValue(node, segs);
    if (isSeq(node)) {
      const out: unknown[] = [];
      node.items.forEach((item, i) => {
        const s = [...segs, i];
        where.set(keyOf(s), { value: (item as Node | null) ?? null, key: null });
        out.push(build((item as Node | null) ?? null, s, depth + 1));
      });
      return out;
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      const seenAt = new Map<string, number>();
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const keyNode = (pair.key as Node | null) ?? null;
        const valueNode = (pair.value as Node | null) ?? null;
        const name = keyName(keyNode);
        if (name === null) {
          flag(keyNode ?? valueNode, segs, 'mapping keys must be plain text (not empty, not a number, list or mapping)');
          continue;
        }
        const s = [...segs, name];
        const keyOffset = keyNode?.range?.[0] ?? valueNode?.range?.[0] ?? 0;
        if (FORBIDDEN_KEYS.has(name)) {
          flag(keyNode, s, `forbidden key "${name}" (it could change object prototypes)`);
          continue;
        }
        const seen = seenAt.get(name);
        if (seen !== undefined) {
          duplicateOffsets.add(keyOffset);
          flag(keyNode, s, `duplicate key ${name} (first written at line ${seen}); a key may appear once per mapping`);
          continue;
        }
        seenAt.set(name, at(keyOffset).line);
        where.set(keyOf(s), { value: valueNode, key: keyNode });
        out[name] = build(valueNode, s, depth + 1);
      }
      return out;
    }
    flag(node, segs, 'unsupported YAML node');
    return null;
  };

  const scalarValue = (node: Node, segs: PathSegments): unknown => {
    if (!isScalar(node)) return null;
    const v = node.value;
    const src = node.type === 'PLAIN' && node.range ? text.slice(node.range[0], node.range[1]).trim() : '';
    // Hex, octal and leading-zero integers: the schema decides (x-plain-integer, x-octal), and
    // a field that wants text is told what YAML made of it (describeAjvError, `type`).
    if (typeof v === 'bigint' && (/^[-+]?0[xXoO]/.test(src) || /^[-+]?0[0-9]+$/.test(src))) radix.set(toPointer(segs), src);
    if (typeof v === 'bigint') {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        flag(node, segs, `integer ${v} is out of range: the largest accepted is ${Number.MAX_SAFE_INTEGER} (2^53-1)`);
        return 0;
      }
      return Number(v);
    }
    if (typeof v === 'number') {
      // With intAsBigInt every integer literal is a BigInt, so a JS number here was written
      // as a float (1e9, 5.0, .inf); the schema decides whether that is acceptable.
      floats.add(toPointer(segs));
      return v;
    }
    if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v;
    flag(node, segs, 'unsupported YAML value type; write a plain string, number or boolean');
    return null;
  };

  where.set(keyOf([]), { value: contents, key: null });
  const data = build(contents, [], 0);

  for (const e of [...doc.errors, ...doc.warnings]) {
    const offset = e.pos[0];
    if (e.code === 'DUPLICATE_KEY' && duplicateOffsets.has(offset)) continue;
    const message =
      e.code === 'DUPLICATE_KEY'
        ? 'duplicate key'
        : e.code === 'MULTIPLE_DOCS'
          ? 'the file must hold a single YAML document (remove the second ---)'
          : firstLine(e.message);
    issues.push({ file, ...at(offset), path: formatPath(deepestPathAt(where, offset)), message: `YAML: ${message}` });
  }

  const info = (segs: PathSegments): NodeInfo | undefined => where.get(keyOf(segs));
  const position = (segs: PathSegments, atKey = false): Position => {
    for (let n = segs.length; n >= 0; n--) {
      const i = info(segs.slice(0, n));
      if (!i) continue;
      const wanted = n === segs.length && !atKey;
      // An error about a collection points at its key line (`kme:`), about a scalar at the value.
      const node = wanted && i.value && (isScalar(i.value) || isAlias(i.value)) ? i.value : (i.key ?? i.value);
      return node?.range ? at(node.range[0]) : { line: 1, col: 1 };
    }
    return { line: 1, col: 1 };
  };

  // After a syntax error the tree is a guess; schema messages about it would mislead.
  if (!aliasBomb && doc.errors.length === 0) {
    const validate = compile(schema);
    const ok = validate.call({ floats, radix }, data);
    if (!ok) {
      for (const err of validate.errors ?? []) {
        const mapped = describeAjvError(err, data, radix);
        if (mapped === null) continue;
        if (reported.some((r) => isPrefix(r, mapped.segs))) continue;
        issues.push({ file, ...position(mapped.segs, mapped.atKey === true), path: formatPath(mapped.segs), message: mapped.message });
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(ErrorCodes.CONFIG_INVALID, file, dedupe(issues));

  return {
    file,
    dir: dirname(file),
    data,
    position,
    written: (segs) => info(segs) !== undefined,
    issue: (segs, message) => ({ file, ...position(segs), path: formatPath(segs), message }),
  };
}

/**
 * Validates `value` against `schema` and fills in its defaults (mutating `value`); no
 * positions. Used to build a whole default object such as the `default` policy.
 * @throws Error when `value` does not satisfy the schema (a programming error here).
 */
export function applySchemaDefaults<T>(schema: JsonSchema, value: T): T {
  const validate = compile(schema);
  if (!validate.call({ floats: new Set<string>(), radix: new Map<string, string>() }, value)) {
    throw new Error(`default value does not satisfy its schema: ${JSON.stringify(validate.errors)}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------
// ajv

const validators = new WeakMap<JsonSchema, ValidateFunction>();
let ajvInstance: Ajv2020 | undefined;

function getAjv(): Ajv2020 {
  if (ajvInstance) return ajvInstance;
  const ajv = new Ajv2020({ allErrors: true, useDefaults: true, strict: true, verbose: true, passContext: true });
  // Annotation: the human text for "what is expected" used in messages (editors ignore x- keywords).
  ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' });
  // A field that holds a file mode may be written in octal (0o600); any other integer may not.
  ajv.addKeyword({ keyword: 'x-octal', schemaType: 'boolean' });
  // Integers must be written as plain decimal digits (BC-33): the loader marks float-notation
  // numbers (1e9, 5.0) and hex/octal ones (0x10 is a count of 16 nobody meant to write).
  ajv.addKeyword({
    keyword: 'x-plain-integer',
    type: 'number',
    schemaType: 'boolean',
    errors: true,
    validate: function plainInteger(
      this: { floats?: Set<string>; radix?: Map<string, string> } | undefined,
      enabled: boolean,
      data: number,
      parent: unknown,
      cxt?: { instancePath: string },
    ): boolean {
      const at = cxt?.instancePath ?? '';
      const float = enabled && Number.isInteger(data) && this?.floats?.has(at) === true;
      const src = enabled ? this?.radix?.get(at) : undefined;
      const octalOk = src !== undefined && /^[-+]?0[oO]/.test(src) && (parent as { ['x-octal']?: boolean } | undefined)?.['x-octal'] === true;
      const hit = float || (src !== undefined && !octalOk);
      const octalField = (parent as { ['x-octal']?: boolean } | undefined)?.['x-octal'] === true;
      if (hit) (plainInteger as unknown as { errors: unknown[] }).errors = [{ keyword: 'x-plain-integer', params: { notation: float ? 'float' : src, octalField } }];
      return !hit;
    },
  });
  ajvInstance = ajv;
  return ajv;
}

function compile(schema: JsonSchema): ValidateFunction {
  let v = validators.get(schema);
  if (!v) {
    v = getAjv().compile(markIntegers(structuredClone(schema)));
    validators.set(schema, v);
  }
  return v;
}

/** Adds `x-plain-integer: true` to every subschema of type integer. */
function markIntegers(s: unknown): JsonSchema {
  if (Array.isArray(s)) {
    s.forEach(markIntegers);
  } else if (s !== null && typeof s === 'object') {
    const o = s as JsonSchema;
    const t = o.type;
    if (t === 'integer' || (Array.isArray(t) && t.includes('integer') && !t.includes('number'))) o['x-plain-integer'] = true;
    for (const [k, v] of Object.entries(o)) if (k !== 'default' && k !== 'enum' && k !== 'const' && k !== 'examples') markIntegers(v);
  }
  return s as JsonSchema;
}

interface MappedError {
  segs: (string | number)[];
  message: string;
  /** Point at the key rather than the value (unknown or misnamed keys). */
  atKey?: boolean;
}

function describeAjvError(err: ErrorObject, root: unknown, radix: ReadonlyMap<string, string> = new Map()): MappedError | null {
  const segs = pointerToSegments(err.instancePath, root);
  const parent = (err.parentSchema ?? {}) as JsonSchema;
  const expected = typeof parent['x-expected'] === 'string' ? (parent['x-expected'] as string) : undefined;
  const data = err.data;
  const p = err.params as Record<string, unknown>;
  const nameErr = (err as ErrorObject & { propertyName?: string }).propertyName;
  if (nameErr !== undefined) {
    return { segs: [...segs, nameErr], atKey: true, message: `invalid name "${nameErr}": expected ${expected ?? `a name matching ${String(p.pattern ?? '')}`}` };
  }
  switch (err.keyword) {
    case 'propertyNames':
      return null; // reported through the inner error that carries propertyName
    case 'required': {
      const name = String(p.missingProperty);
      const sub = ((parent.properties ?? {}) as Record<string, JsonSchema>)[name];
      const what = sub && typeof sub['x-expected'] === 'string' ? `: ${sub['x-expected']}` : '';
      return { segs: [...segs, name], message: `missing required field${what}` };
    }
    case 'additionalProperties': {
      const name = String(p.additionalProperty);
      const known = Object.keys((parent.properties ?? {}) as object);
      const near = known.filter((k) => editDistance(k, name) <= 2 || (name.length >= 3 && (k.startsWith(name) || name.startsWith(k))));
      const hint = near.length > 0 ? `; did you mean ${near.join(' or ')}?` : known.length > 0 ? `; expected one of: ${known.join(', ')}` : '';
      return { segs: [...segs, name], atKey: true, message: `unknown field${hint}` };
    }
    case 'type': {
      const src = radix.get(err.instancePath);
      const got = src === undefined ? describe(data) : `${src}, which YAML reads as the number ${String(data)} (quote it: "${src}")`;
      return { segs, message: `expected ${expected ?? article(String(p.type))}, got ${got}` };
    }
    case 'x-plain-integer':
      if (typeof p.notation === 'string' && /^[-+]?0[0-9]+$/.test(p.notation)) {
        const src = p.notation;
        const fix = p.octalField === true ? `write "${src}" as a quoted string${/^0[0-7]+$/.test(src) ? `, or ${src.replace(/^0+/, '0o')} for octal` : ''}` : `write ${String(data)}`;
        return { segs, message: `number ${src} has a leading zero, which YAML 1.2 reads as decimal ${String(data)}; ${fix}` };
      }
      if (typeof p.notation === 'string' && p.notation !== 'float') return { segs, message: `expected an integer written as plain decimal digits, got ${p.notation} (write ${String(data)})` };
      return { segs, message: `expected an integer written as plain digits, got ${describe(data)} in float or exponent notation (write ${String(data)})` };
    case 'pattern':
    case 'format':
    case 'minLength':
    case 'maxLength':
      return { segs, message: `expected ${expected ?? `text matching ${String(p.pattern ?? err.message)}`}, got ${describe(data)}` };
    case 'enum':
      return { segs, message: `expected one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(' | ')}, got ${describe(data)}` };
    case 'const':
      return { segs, message: `expected ${JSON.stringify(p.allowedValue)}, got ${describe(data)}` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { segs, message: `expected ${expected ?? 'a number'} ${String(p.comparison)} ${String(p.limit)}, got ${describe(data)}` };
    case 'minItems':
      return { segs, message: `expected ${expected ?? 'a list'} with at least ${String(p.limit)} item(s), got ${describe(data)}` };
    case 'maxItems':
      return { segs, message: `expected ${expected ?? 'a list'} with at most ${String(p.limit)} item(s), got ${(data as unknown[]).length}` };
    case 'uniqueItems': {
      const i = Number(p.i);
      const j = Number(p.j);
      return { segs: [...segs, i], message: `duplicate item ${describe((data as unknown[])[i])} (same as item ${j})` };
    }
    default:
      return { segs, message: err.message ?? `fails ${err.keyword}` };
  }
}

// ---------------------------------------------------------------------------------------
// helpers

function isPrefix(prefix: PathSegments, segs: PathSegments): boolean {
  return prefix.length <= segs.length && prefix.every((s, i) => s === segs[i]);
}

function keyName(node: Node | null): string | null {
  if (node === null || !isScalar(node)) return null;
  return typeof node.value === 'string' && node.value !== '' ? node.value : null;
}

function shortTag(tag: string): string {
  return tag.startsWith('tag:yaml.org,2002:') ? `!!${tag.slice('tag:yaml.org,2002:'.length)}` : tag;
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

function toPointer(segs: PathSegments): string {
  return segs.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

function pointerToSegments(ptr: string, root: unknown): (string | number)[] {
  if (ptr === '') return [];
  const out: (string | number)[] = [];
  let cur: unknown = root;
  for (const raw of ptr.slice(1).split('/')) {
    const s = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      out.push(Number(s));
      cur = cur[Number(s)];
    } else {
      out.push(s);
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[s] : undefined;
    }
  }
  return out;
}

function deepestPathAt(where: Map<string, NodeInfo>, offset: number): PathSegments {
  let best: PathSegments = [];
  let bestLen = Infinity;
  for (const [k, i] of where) {
    const r = i.value?.range ?? i.key?.range;
    if (!r) continue;
    const start = i.key?.range?.[0] ?? r[0];
    const end = r[1];
    if (offset >= start && offset < end && end - start <= bestLen) {
      best = JSON.parse(k) as PathSegments;
      bestLen = end - start;
    }
  }
  return best;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing (null)';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === 'boolean') return `boolean ${v}`;
  return `number ${String(v)}`;
}

function article(type: string): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    string: 'a string',
    integer: 'an integer',
    number: 'a number',
    boolean: 'true or false',
    null: 'nothing',
  };
  return names[type] ?? type;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.line}:${i.col}:${i.path}:${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
