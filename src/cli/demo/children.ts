/**
 * The demo's child processes: each a real `qkdgw` process whose JSON log lines are
 * parsed and kept, so the demo can wait on events and report what each side saw.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface LogLine {
  event?: string;
  [k: string]: unknown;
}

/** Path of bin/qkdgw.js, from dist/cli/demo/ or src/cli/demo/. */
export const QKDGW_BIN = fileURLToPath(new URL('../../../bin/qkdgw.js', import.meta.url));

export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  #waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  #listeners = new Set<(l: LogLine) => void>();
  exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly exitedPromise: Promise<void>;

  /**
   * Spawns `qkdgw ...args`. With `logFile`, everything the process writes (stdout and
   * stderr, byte for byte) is also appended to that file (mode 0600): the demo keeps each
   * process's log in its work folder (see `--keep`).
   */
  constructor(name: string, args: string[], logFile?: string) {
    this.name = name;
    this.proc = spawn(process.execPath, [QKDGW_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (logFile) {
      const f: WriteStream = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
      f.on('error', () => undefined); // a log copy is never worth failing the demo
      this.proc.stdout!.on('data', (c: Buffer) => f.write(c));
      this.proc.stderr!.on('data', (c: Buffer) => f.write(c));
      this.proc.once('close', () => f.end());
    }
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.#line(l));
    createInterface({ input: this.proc.stderr! }).on('line', (l) => this.stderr.push(l));
    this.exitedPromise = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve();
      });
    });
  }

  #line(text: string): void {
    let l: LogLine;
    try {
      l = JSON.parse(text) as LogLine;
    } catch {
      l = { msg: text };
    }
    this.lines.push(l);
    for (const f of this.#listeners) f(l);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred(l)) return true;
      w.resolve(l);
      return false;
    });
  }

  /** Resolves with the first line (past or future) matching `pred`; rejects after `ms` or on exit. */
  waitFor(pred: (l: LogLine) => boolean, ms: number, what: string): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${ms / 1000} s${this.#tail()}`)), ms);
      const w = {
        pred,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      this.#waiters.push(w);
      void this.exitedPromise.then(() => {
        clearTimeout(timer);
        if (this.#waiters.includes(w)) reject(new Error(`${this.name} exited (${JSON.stringify(this.exited)}) before ${what}${this.#tail()}`));
      });
    });
  }

  /** Calls `fn` with every log line from now on, as it arrives; returns the unsubscribe function. */
  onLine(fn: (l: LogLine) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  events(name: string): LogLine[] {
    return this.lines.filter((l) => l.event === name);
  }

  #tail(): string {
    const t = this.stderr.slice(-5).join('\n');
    return t ? `; stderr: ${t}` : '';
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.exited) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exitedPromise;
    clearTimeout(t);
  }
}
