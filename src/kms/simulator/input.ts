/**
 * Strict checks for the simulator's run-time inputs (control API arguments and admin HTTP
 * bodies). A test that misspells a fault name must fail loudly, not run against a KME
 * that silently ignored it, so unknown members and wrong types are errors.
 */
import { ErrorCodes, QkdgwError } from '../../errors.js';

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * @throws QkdgwError KMS_CONFIG `<path>: <problem>`; `details.path` names the member
 */
export function inputError(path: string, problem: string): never {
  throw new QkdgwError(ErrorCodes.KMS_CONFIG, `${path}: ${problem}`, { path });
}

/** `undefined` becomes `{}`, so every setter may be called without an argument. */
export function expectObject(v: unknown, path: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (!isObject(v)) inputError(path, `must be a JSON object, got ${describe(v)}`);
  return v;
}

const snakeToCamel = (s: string): string => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/**
 * Refuses members not in `known`. The message lists the known names and, when the
 * unknown one is the snake_case spelling of a known camelCase name (`latency_ms`), says so.
 */
export function rejectUnknown(obj: Record<string, unknown>, path: string, known: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (known.includes(k)) continue;
    const camel = snakeToCamel(k);
    const hint = camel !== k && known.includes(camel) ? ` (did you mean ${camel}?)` : '';
    inputError(`${path}.${k}`, `unknown member${hint}; known: ${known.join(', ')}`);
  }
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/** An integer in [min, max], or undefined when absent. */
export function optInt(v: unknown, path: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    inputError(path, `must be an integer from ${min} to ${max}, got ${describe(v)}`);
  }
  return v;
}

/** A boolean, or undefined when absent. */
export function optBool(v: unknown, path: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') inputError(path, `must be true or false, got ${describe(v)}`);
  return v;
}
