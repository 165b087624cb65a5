/**
 * The logging interface lower layers depend on (a subset of pino's). The daemon hands
 * in a pino child logger; tests hand in a recorder. Log key_IDs and epochs, never keys.
 */
export interface LogFn {
  (obj: Record<string, unknown>, msg?: string): void;
  (msg: string): void;
}
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

const noop = (() => undefined) as LogFn;
/** A logger that drops everything. */
export const silentLogger: Logger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  fatal: noop,
  child: () => silentLogger,
};

/** A logger that keeps every line in memory, for tests. */
export class MemoryLogger implements Logger {
  readonly lines: Array<Record<string, unknown>>;
  readonly #bindings: Record<string, unknown>;
  constructor(lines: Array<Record<string, unknown>> = [], bindings: Record<string, unknown> = {}) {
    this.lines = lines;
    this.#bindings = bindings;
  }
  #at(level: string): LogFn {
    return ((a: unknown, b?: unknown) => {
      const obj = typeof a === 'string' ? { msg: a } : { ...(a as object), ...(b === undefined ? {} : { msg: b }) };
      this.lines.push({ level, ...this.#bindings, ...obj });
    }) as LogFn;
  }
  trace = this.#at('trace');
  debug = this.#at('debug');
  info = this.#at('info');
  warn = this.#at('warn');
  error = this.#at('error');
  fatal = this.#at('fatal');
  child(bindings: Record<string, unknown>): Logger {
    return new MemoryLogger(this.lines, { ...this.#bindings, ...bindings });
  }
}
