/**
 * BC-38: sd_notify from Node through the native addon, against real AF_UNIX datagram
 * sockets (a filesystem path and an abstract `@name`) held by a small python3 receiver
 * (notify-receiver.py: Node cannot create one). First the addon's sdNotify itself (address
 * forms and bounds, errors, never blocking), then the real `qkdgw run` processes of a lab:
 * READY=1 (with STATUS=) only once the listeners are open, RELOADING=1 + READY=1 around
 * SIGHUP, WATCHDOG=1 repeatedly, STOPPING=1 on SIGTERM, in that order, each datagram sent
 * by the daemon's own PID (what NotifyAccess=main requires).
 */
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { initPki } from '../../../src/pki/index.js';
import { startLabProcesses } from '../../../src/cli/demo/lab-processes.js';
import { writeGwAConfig } from '../../../src/daemon/lab.js';
import { QKDGW_BIN } from '../../../src/cli/demo/children.js';
import type { Child } from '../../../src/cli/demo/children.js';
import type { NativeBinding } from '../../../src/crypto/native/binding.js';
import { nativeMissingMessage, nativeStatus, REQUIRE_NATIVE } from '../../vectors/aead-backends.js';

const RECEIVER = fileURLToPath(new URL('./notify-receiver.py', import.meta.url));

interface Datagram {
  sock: string;
  pid: number | null;
  uid: number | null;
  msg: string;
  listen: number[] | null;
}

/** notify-receiver.py bound to `addrs`; every datagram it reports is kept, in arrival order. */
class Receiver {
  readonly got: Datagram[] = [];
  readonly proc: ChildProcess;
  readonly #waiters = new Set<() => void>();
  readonly #bound: Promise<void>;
  #stderr = '';

  constructor(addrs: string[], hold = false) {
    this.proc = spawn('python3', [RECEIVER, ...(hold ? ['--hold'] : []), ...addrs], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr!.on('data', (c: Buffer) => (this.#stderr += c.toString()));
    let bound!: () => void;
    let failed!: (e: Error) => void;
    this.#bound = new Promise<void>((res, rej) => {
      bound = res;
      failed = rej;
    });
    this.proc.once('error', (e) => failed(new Error(`cannot start python3 (needed for an AF_UNIX datagram socket): ${e.message}`)));
    this.proc.once('exit', (code) => failed(new Error(`notify-receiver.py exited ${code}: ${this.#stderr}`)));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const v = JSON.parse(line) as Datagram | { bound: string[] };
      if ('bound' in v) return bound();
      this.got.push(v);
      for (const w of [...this.#waiters]) w();
    });
  }

  ready(): Promise<void> {
    return this.#bound;
  }

  /** Resolves with the datagrams once `pred` holds over all received so far; rejects after `ms`. */
  until(pred: (got: Datagram[]) => boolean, ms: number, what: string): Promise<Datagram[]> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pred(this.got)) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(this.got);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no ${what} within ${ms} ms; received: ${JSON.stringify(this.got.map((d) => d.msg))}`));
      }, ms);
      this.#waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin!.end();
    await gone;
  }
}

const first = (msg: string): string => msg.split('\n')[0]!;
const kinds = (ds: Datagram[]): string[] => ds.map((d) => first(d.msg));

function withAddon(t: Test, name: string, fn: (t: Test, b: NativeBinding) => Promise<void>): void {
  const st = nativeStatus();
  if (!st.available) {
    if (REQUIRE_NATIVE) t.fail(nativeMissingMessage(st.reason));
    else t.test(name, { skip: nativeMissingMessage(st.reason) }, async () => undefined);
    return;
  }
  t.test(name, (t) => fn(t, st.binding));
}

/** Sets NOTIFY_SOCKET for this process (the addon reads the C environment, which process.env writes through). */
function notifySocket(t: Test, v: string | undefined): void {
  const old = process.env.NOTIFY_SOCKET;
  if (v === undefined) delete process.env.NOTIFY_SOCKET;
  else process.env.NOTIFY_SOCKET = v;
  t.teardown(() => {
    if (old === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = old;
  });
}

const uniq = (): string => `${process.pid}-${randomBytes(4).toString('hex')}`;

/**
 * A short private folder for socket files: t.testdir() paths are longer than the 107
 * bytes a sockaddr_un path can hold.
 */
function sockDir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'qkdgw-sd-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

withAddon(t, 'BC-38 (a)(b) sdNotify: path and abstract sockets, sent by this PID; unset is a no-op', async (t, b) => {
  const path = join(sockDir(t), 'notify.sock');
  const abstract = `@qkdgw-test-notify-${uniq()}`;
  const rx = new Receiver([path, abstract]);
  t.teardown(() => rx.close());
  await rx.ready();

  notifySocket(t, undefined);
  t.equal(b.sdNotify('READY=1'), false, 'NOTIFY_SOCKET unset: false, nothing sent');
  process.env.NOTIFY_SOCKET = '';
  t.equal(b.sdNotify('READY=1'), false, 'NOTIFY_SOCKET empty: same');

  process.env.NOTIFY_SOCKET = path;
  t.equal(b.sdNotify('READY=1\nSTATUS=via path'), true);
  process.env.NOTIFY_SOCKET = abstract;
  t.equal(b.sdNotify('READY=1\nSTATUS=via abstract'), true);
  const big = `STATUS=${'x'.repeat(4096 - 7)}`;
  t.equal(b.sdNotify(big), true, 'a 4096-byte state is sent whole');
  const got = await rx.until((g) => g.length >= 3, 5_000, 'three datagrams');
  t.same(
    got.map((d) => [d.sock, d.msg]),
    [
      [path, 'READY=1\nSTATUS=via path'],
      [abstract, 'READY=1\nSTATUS=via abstract'],
      [abstract, big],
    ],
    'each arrives once, on the socket NOTIFY_SOCKET named, intact',
  );
  for (const d of got) t.equal(d.pid, process.pid, 'SCM_CREDENTIALS: sent by this process (NotifyAccess=main accepts it)');
});

withAddon(t, 'sdNotify: bad addresses and states throw QKDGW_E_SD_NOTIFY / TypeError / RangeError', async (t, b) => {
  const dir = sockDir(t);
  notifySocket(t, undefined);
  const errOf = (addr: string, state = 'READY=1'): { code?: string; errno?: number; message: string } => {
    process.env.NOTIFY_SOCKET = addr;
    try {
      b.sdNotify(state);
    } catch (e) {
      return e as { code?: string; errno?: number; message: string };
    }
    return { message: 'did not throw' };
  };
  // errno values of Linux.
  const cases: Array<[string, string, number, RegExp]> = [
    ['relative path', 'run/notify', 97, /absolute path or @abstract-name/],
    ['vsock', 'vsock:2:1234', 97, /vsock is not supported/],
    ['empty abstract name', '@', 22, /abstract name is empty/],
    ['path of 108 bytes (no room for NUL)', `/${'p'.repeat(107)}`, 36, /path does not fit/],
    ['abstract name of 108 bytes after @', `@${'a'.repeat(108)}`, 36, /abstract name does not fit/],
    ['path of 107 bytes, nobody there', `/${'p'.repeat(106)}`, 2, /sendto\(NOTIFY_SOCKET\) failed/],
    ['abstract name of 107 bytes, nobody there', `@${'a'.repeat(107)}`, 111, /sendto\(NOTIFY_SOCKET\) failed/],
    ['missing directory', join(dir, 'none', 'notify.sock'), 2, /No such file/],
  ];
  for (const [what, addr, errno, msg] of cases) {
    const e = errOf(addr);
    t.equal(e.code, 'QKDGW_E_SD_NOTIFY', `${what}: code`);
    t.equal(e.errno, errno, `${what}: errno ${errno}`);
    t.match(e.message, msg, `${what}: message`);
    t.match(e.message, 'NOTIFY_SOCKET=', `${what}: names the address`);
  }
  process.env.NOTIFY_SOCKET = join(dir, 'unused.sock');
  for (const [what, arg, type] of [
    ['empty state', '', RangeError],
    ['4097 bytes', 'x'.repeat(4097), RangeError],
    ['embedded NUL', 'READY=1\0STATUS=x', TypeError],
    ['a number', 1, TypeError],
    ['nothing', undefined, TypeError],
  ] as const) {
    t.throws(() => (b.sdNotify as (s: unknown) => boolean)(arg), type, `${what}: ${type.name}`);
  }
});

withAddon(t, 'sdNotify never blocks: a receiver that stops reading gives EAGAIN, not a stalled loop', async (t, b) => {
  const path = join(sockDir(t), 'held.sock');
  const rx = new Receiver([path], true);
  t.teardown(() => rx.close());
  await rx.ready();
  notifySocket(t, path);
  let err: { errno?: number; code?: string } | null = null;
  let sent = 0;
  for (; sent < 100_000 && !err; sent++) {
    try {
      b.sdNotify(`WATCHDOG=1\nSTATUS=${sent}`);
    } catch (e) {
      err = e as { errno?: number; code?: string };
    }
  }
  t.ok(err, `the queue filled up after ${sent} datagrams`);
  t.equal(err?.code, 'QKDGW_E_SD_NOTIFY');
  t.equal(err?.errno, 11, 'EAGAIN: MSG_DONTWAIT on a non-blocking socket');
});

withAddon(t, 'BC-38 qkdgw run under NOTIFY_SOCKET + WATCHDOG_USEC: READY after listeners, RELOADING/READY, WATCHDOG, STOPPING', async (t) => {
  const dir = t.testdir();
  const path = join(sockDir(t), 'gw-b-notify.sock');
  const abstract = `@qkdgw-test-notify-${uniq()}`;
  const rx = new Receiver([path, abstract]);
  t.teardown(() => rx.close());
  await rx.ready();

  const pki = await initPki({ outDir: join(dir, 'pki'), gateways: ['gw-a', 'gw-b'], kmes: ['KME_A', 'KME_B'] });
  const target = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => target.close(r)));

  // Children inherit this process's environment at spawn: the simulator and gw-b get the
  // path socket, gw-a (spawned after gw-b) the abstract one. 1 s watchdog: pings every 500 ms.
  const oldEnv = { NOTIFY_SOCKET: process.env.NOTIFY_SOCKET, WATCHDOG_USEC: process.env.WATCHDOG_USEC, WATCHDOG_PID: process.env.WATCHDOG_PID };
  t.teardown(() => {
    for (const [k, v] of Object.entries(oldEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  process.env.NOTIFY_SOCKET = path;
  process.env.WATCHDOG_USEC = '1000000';
  delete process.env.WATCHDOG_PID;
  const switchForGwA = (c: Child): void => {
    if (c.name === 'gw-b') process.env.NOTIFY_SOCKET = abstract;
  };
  const lab = await startLabProcesses({ dir, pki, target: { host: '127.0.0.1', port: (target.address() as { port: number }).port }, rekeyAfterTime: '60s', rekeyJitter: '0s', hardLimitTime: '120s' }, switchForGwA);
  t.teardown(() => lab.stop());
  const { gwA, gwB } = lab;
  const pidA = gwA.proc.pid!;
  const pidB = gwB.proc.pid!;
  const fromA = (g: Datagram[]): Datagram[] => g.filter((d) => d.pid === pidA);
  const fromB = (g: Datagram[]): Datagram[] => g.filter((d) => d.pid === pidB);

  // READY=1 with STATUS=, sent once the listeners were open.
  await rx.until((g) => fromA(g).some((d) => first(d.msg) === 'READY=1') && fromB(g).some((d) => first(d.msg) === 'READY=1'), 20_000, 'READY=1 from both gateways');
  const aUp = await gwA.waitFor((l) => l.event === 'gateway_started', 5_000, 'gw-a started');
  const bUp = await gwB.waitFor((l) => l.event === 'gateway_started', 5_000, 'gw-b started');
  const readyA = fromA(rx.got).find((d) => first(d.msg) === 'READY=1')!;
  const readyB = fromB(rx.got).find((d) => first(d.msg) === 'READY=1')!;
  t.equal(readyA.sock, abstract, 'gw-a notified on the abstract socket (BC-38 a)');
  t.equal(readyB.sock, path, 'gw-b notified on the path socket (BC-38 b)');
  t.match(readyA.msg, /^READY=1\nSTATUS=peers up 1\/1, degraded 0, key stock \d+$/, 'READY=1 carries a one-line STATUS=, sent once the first epoch was up (BC-38)');
  t.match(readyB.msg, /^READY=1\nSTATUS=peers up 1\/1, degraded 0, key stock 0$/, 'gw-b too waited for its first epoch');
  for (const g of [gwA, gwB]) {
    const ready = await g.waitFor((l) => l.event === 'ready', 5_000, 'ready logged');
    t.same(ready.peers_without_epoch, [], `${g.name}: ready with every peer's first epoch`);
    const at = (e: string): number => g.lines.findIndex((l) => l.event === e);
    t.ok(at('epoch_switch') >= 0 && at('epoch_switch') < at('ready'), `${g.name}: epoch_switch logged before ready`);
  }
  t.ok(readyA.listen?.includes(Number((aUp.services as Record<string, number>).web)), `gw-a was listening on its service port when READY=1 arrived (${JSON.stringify(readyA.listen)})`);
  t.ok(
    readyB.listen?.includes(Number(bUp.control)) && readyB.listen?.includes(Number(bUp.data)),
    `gw-b was listening on its control and data ports when READY=1 arrived (${JSON.stringify(readyB.listen)})`,
  );
  t.notOk(rx.got.some((d) => d.pid !== pidA && d.pid !== pidB), 'nothing from any other process (the simulator inherits NOTIFY_SOCKET but sends nothing)');

  // WATCHDOG=1 from the main loop, repeatedly.
  await rx.until((g) => fromA(g).filter((d) => d.msg === 'WATCHDOG=1').length >= 3, 10_000, 'three WATCHDOG=1 from gw-a');
  t.equal(gwA.events('watchdog_started')[0]?.period_ms, 500, 'pings every half WATCHDOG_USEC');

  // SIGHUP with an unchanged file: RELOADING=1, then READY=1.
  gwA.proc.kill('SIGHUP');
  await gwA.waitFor((l) => l.event === 'reload_applied', 10_000, 'reload_applied');
  const afterReload = await rx.until((g) => kinds(fromA(g)).lastIndexOf('READY=1') > kinds(fromA(g)).indexOf('RELOADING=1') && kinds(fromA(g)).includes('RELOADING=1'), 10_000, 'RELOADING=1 then READY=1');
  const reloading = fromA(afterReload).find((d) => first(d.msg) === 'RELOADING=1')!;
  t.match(reloading.msg, /^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading configuration$/, 'RELOADING=1 with MONOTONIC_USEC and STATUS=');

  // SIGHUP with a broken file: still RELOADING=1 then READY=1 (the old config runs on), STATUS says why.
  const good = readFileSync(lab.files.gwA, 'utf8');
  writeFileSync(lab.files.gwA, '');
  gwA.proc.kill('SIGHUP');
  await gwA.waitFor((l) => l.event === 'reload_failed', 10_000, 'reload_failed');
  await rx.until((g) => fromA(g).some((d) => /^READY=1\nSTATUS=reload rejected, running configuration unchanged: .*empty/.test(d.msg)), 10_000, 'READY=1 after the rejected reload');
  writeFileSync(lab.files.gwA, good);
  const wdBeforeStop = fromA(rx.got).filter((d) => d.msg === 'WATCHDOG=1').length;
  await rx.until((g) => fromA(g).filter((d) => d.msg === 'WATCHDOG=1').length > wdBeforeStop, 5_000, 'WATCHDOG=1 after the reloads');

  // SIGTERM: STOPPING=1, exit 0, nothing after.
  await gwA.stop();
  t.equal(gwA.exited?.code, 0, 'gw-a exits 0 on SIGTERM');
  await rx.until((g) => fromA(g).some((d) => first(d.msg) === 'STOPPING=1'), 5_000, 'STOPPING=1 from gw-a');
  await gwB.stop();
  t.equal(gwB.exited?.code, 0, 'gw-b exits 0 on SIGTERM');
  await rx.until((g) => fromB(g).some((d) => first(d.msg) === 'STOPPING=1'), 5_000, 'STOPPING=1 from gw-b');

  // The whole sequence from gw-a, in order (STATUS-only updates may come in between).
  const seqA = kinds(fromA(rx.got)).filter((k) => !k.startsWith('STATUS='));
  t.same(
    seqA.filter((k) => k !== 'WATCHDOG=1'),
    ['READY=1', 'RELOADING=1', 'READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1'],
    'gw-a: READY, then RELOADING + READY per SIGHUP, then STOPPING',
  );
  const at = (k: string, nth = 0): number => seqA.reduce<number[]>((acc, x, i) => (x === k ? [...acc, i] : acc), [])[nth] ?? -1;
  const wd = seqA.reduce<number[]>((acc, x, i) => (x === 'WATCHDOG=1' ? [...acc, i] : acc), []);
  t.ok(wd[0]! > at('READY=1'), 'no WATCHDOG=1 before READY=1 (the watchdog runs once start-up completed)');
  t.ok(wd.some((i) => i < at('RELOADING=1')), 'WATCHDOG=1 between READY=1 and the first reload');
  t.ok(wd.some((i) => i > at('READY=1', 2)), 'WATCHDOG=1 after the reloads');
  t.ok(wd.every((i) => i < at('STOPPING=1')), 'nothing but STOPPING=1 at the end: no WATCHDOG=1 after it');
  const seqB = kinds(fromB(rx.got)).filter((k) => !k.startsWith('STATUS='));
  t.equal(seqB[0], 'READY=1', 'gw-b: READY=1 first');
  t.equal(seqB.at(-1), 'STOPPING=1', 'gw-b: STOPPING=1 last');
  t.ok(seqB.filter((k) => k === 'WATCHDOG=1').length >= 3, 'gw-b fed its watchdog too');
  t.equal(seqB.filter((k) => k === 'READY=1').length, 1, 'gw-b: exactly one READY=1');
});

withAddon(t, 'BC-38 a peer that never answers: READY=1 after startup.ready_wait, STATUS= names it; SIGTERM then exits 0', async (t) => {
  const dir = t.testdir();
  const path = join(sockDir(t), 'lonely-notify.sock');
  const rx = new Receiver([path]);
  t.teardown(() => rx.close());
  await rx.ready();
  const pki = await initPki({ outDir: join(dir, 'pki'), gateways: ['gw-a', 'gw-b'], kmes: ['KME_A', 'KME_B'] });
  const refused = createServer();
  await new Promise<void>((r) => refused.listen(0, '127.0.0.1', r));
  const deadPort = (refused.address() as { port: number }).port;
  await new Promise((r) => refused.close(r)); // nothing listens there now: gw-b never answers
  const file = writeGwAConfig({ dir, pki, target: { host: '127.0.0.1', port: 1 } }, { kmeAUrl: `https://127.0.0.1:${deadPort}/api/v1`, kmeBUrl: '', controlB: deadPort, dataB: deadPort });
  writeFileSync(file, `${readFileSync(file, 'utf8')}startup:\n  ready_wait: 1500ms\n`, { mode: 0o600 });
  const started = Date.now();
  const gw = spawn(process.execPath, [QKDGW_BIN, 'run', '--config', file], { env: { ...process.env, NOTIFY_SOCKET: path, WATCHDOG_USEC: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => gw.once('exit', (code) => r(code)));
  t.teardown(() => void gw.kill('SIGKILL'));
  const got = await rx.until((g) => g.some((d) => first(d.msg) === 'READY=1'), 20_000, 'READY=1');
  const ready = got.find((d) => first(d.msg) === 'READY=1')!;
  t.ok(Date.now() - started >= 1_500, 'not before ready_wait ran out');
  t.match(ready.msg, /^READY=1\nSTATUS=peers up 0\/1, degraded 0, key stock 0; no first epoch yet with gw-b after [12] s$/, 'STATUS= names the peer without an epoch');
  gw.kill('SIGTERM');
  t.equal(await exited, 0, 'exit 0 on SIGTERM');
  await rx.until((g) => g.some((d) => first(d.msg) === 'STOPPING=1'), 5_000, 'STOPPING=1');
});
